// Conditional requests (RFC 9110 §13.2.2 order): If-Match / If-Unmodified-Since → 412,
// If-None-Match / If-Modified-Since → 304, and If-Range (does a Range still apply?).
import type { IncomingHttpHeaders } from 'node:http';

interface Validators {
  readonly etag: string;
  readonly mtimeMs: number;
}

/** HTTP dates have whole seconds: compare the mtime at that granularity. */
const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

export function preconditions(h: IncomingHttpHeaders, v: Validators, method: string): 200 | 304 | 412 {
  const ifMatch = h['if-match'];
  if (ifMatch !== undefined) {
    if (!etagListMatches(ifMatch, v.etag, true)) return 412;
  } else {
    const since = h['if-unmodified-since'];
    if (since !== undefined) {
      const t = Date.parse(since);
      if (!Number.isNaN(t) && seconds(v.mtimeMs) > t) return 412;
    }
  }
  const ifNoneMatch = h['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (etagListMatches(ifNoneMatch, v.etag, false)) return method === 'GET' || method === 'HEAD' ? 304 : 412;
  } else {
    const since = h['if-modified-since'];
    if (since !== undefined && (method === 'GET' || method === 'HEAD')) {
      const t = Date.parse(since);
      if (!Number.isNaN(t) && seconds(v.mtimeMs) <= t) return 304;
    }
  }
  return 200;
}

/** If-Range: a strong ETag that matches, or the exact Last-Modified date. Absent means yes. */
export function rangeStillValid(ifRange: string | undefined, v: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === v.etag;
  const t = Date.parse(value);
  return !Number.isNaN(t) && t === seconds(v.mtimeMs);
}

/** Does the list (`*`, or comma-separated entity tags) match? Strong comparison refuses weak tags. */
function etagListMatches(list: string, etag: string, strong: boolean): boolean {
  const trimmed = list.trim();
  if (trimmed === '*') return true;
  if (trimmed === etag) return true; // the common case: one tag, ours
  for (const raw of trimmed.split(',')) {
    const tag = raw.trim();
    if (tag === etag) return true;
    if (!strong && tag.startsWith('W/') && tag.slice(2) === etag) return true;
  }
  return false;
}
