// The CGI response header block at the start of STDOUT (RFC 3875 §6): `Name: value` lines up to an empty
// line, with `Status: 404 Not Found` giving the status and a bare `Location` meaning a redirect.
import type { HttpResponse } from '../../core/response.js';

/** Header blocks larger than this are a broken application, not a response (→ 502). */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** A parsed head: shared by every response with the same header block, so never changed once made. */
export interface CgiHead {
  readonly status: number;
  /** By lower-cased name: the name as the application spelled it, and every value in order. */
  readonly headers: ReadonlyMap<string, { readonly name: string; readonly values: readonly string[] }>;
}

/** Where the header block ends: the index just after the blank line, and the blank line's own index. */
export function findHeaderEnd(buf: Buffer): number {
  // Accept both CRLF and bare LF line ends, as CGI applications use either.
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** Headers hop-by-hop or managed by our own HTTP layer: an application's value for them is dropped. */
const DROPPED = new Set(['status', 'connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade']);

/** The last header block parsed, and its head: a script sends the same few headers time after time. */
let lastText = '';
let lastHead: CgiHead | undefined;
const MAX_CACHED_HEAD = 2048;

/** Parses the header block (without the blank line). Throws on a malformed status. */
export function parseCgiHead(text: string): CgiHead {
  if (text === lastText && lastHead) return lastHead;
  const head = parseHead(text);
  // A large block (a script's many cookies) is unlikely to repeat and is not worth keeping.
  if (text.length <= MAX_CACHED_HEAD) {
    lastText = text;
    lastHead = head;
  }
  return head;
}

function parseHead(text: string): CgiHead {
  const headers = new Map<string, { name: string; values: string[] }>();
  let status = 0;
  let last: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      // An obsolete folded continuation line belongs to the previous header.
      last[last.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed CGI header line: ${JSON.stringify(line.slice(0, 80))}`);
    const spelled = line.slice(0, colon).trim();
    const name = spelled.toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'status') {
      const code = Number.parseInt(value, 10);
      if (!(code >= 100 && code <= 999)) throw new Error(`malformed CGI Status: ${value}`);
      status = code;
    }
    if (DROPPED.has(name)) {
      last = undefined;
      continue;
    }
    let entry = headers.get(name);
    if (!entry) headers.set(name, (entry = { name: spelled, values: [] }));
    entry.values.push(value);
    last = entry.values;
  }
  // RFC 3875 §6.2.3: a Location without a Status is a redirect.
  if (status === 0) status = headers.has('location') ? 302 : 200;
  return { status, headers };
}

/**
 * Puts the application's headers on the response. Set-Cookie is added to what outer middleware set;
 * other headers replace it (the application knows its own Content-Type better).
 */
export function applyCgiHead(res: HttpResponse, head: CgiHead): void {
  for (const [lower, { name, values }] of head.headers) {
    if (lower === 'set-cookie' && res.hasHeader(lower)) {
      const prior = res.getHeader(lower);
      const list = Array.isArray(prior) ? prior : [String(prior)];
      res.setHeader(name, [...list, ...values]);
    } else res.setHeader(name, values.length === 1 ? values[0] : [...values]);
  }
  res.statusCode = head.status;
}
