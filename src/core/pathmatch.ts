// Caddy v1's base-path match (httpserver.Path.Matches), shared by every directive that takes a path.
import { posix } from 'node:path';

/**
 * Does `path` fall under `base`? A prefix match on cleaned paths, case-sensitive as in Caddy 1.0
 * (CASE_SENSITIVE_PATH defaults to true). `/` and the empty base match everything. A trailing slash on
 * either side is kept, so base `/api/` does not match `/api`, while base `/api` matches `/api`, `/api/x`
 * and, as in Caddy, `/apix`.
 */
export function pathMatches(path: string, base: string): boolean {
  if (base === '/' || base === '') return true;
  return cleanKeepSlash(path).startsWith(cleanKeepSlash(base));
}

/** A matcher compiled once per config: the base is cleaned up front, the request path per call. */
export function compilePathMatcher(base: string): (path: string) => boolean {
  if (base === '/' || base === '') return () => true;
  const cleanBase = cleanKeepSlash(base);
  return (path) => cleanKeepSlash(path).startsWith(cleanBase);
}

function cleanKeepSlash(p: string): string {
  // The fast path: most request paths are already clean.
  if (p.indexOf('//') < 0 && p.indexOf('/.') < 0) return p;
  const trailing = p.endsWith('/');
  const cleaned = posix.normalize(p);
  return trailing && !cleaned.endsWith('/') ? `${cleaned}/` : cleaned;
}
