// Maps request paths to file system paths under a site root, refusing anything that would leave it.
import path from 'node:path';
import { HttpError } from '../errors.js';

/**
 * Joins a decoded request path onto root. `..` segments are resolved as if root were `/`, so they can
 * never climb out; the result is then checked again to be under root (defence in depth). A path that can
 * name no file (NUL, backslash) is a 400. The result never ends with a slash (except root `/` itself).
 */
export function joinUnderRoot(root: string, requestPath: string): string {
  if (requestPath.includes('\0')) throw new HttpError(400);
  // Backslashes are ordinary bytes on POSIX, but a path with them is never what a client means to fetch
  // from a Caddy-style server, and on other systems they separate segments: refuse them.
  if (requestPath.includes('\\')) throw new HttpError(400);
  const clean = path.posix.normalize(`/${requestPath}`);
  let full = root + (root.endsWith('/') ? clean.slice(1) : clean);
  while (full.length > 1 && full.endsWith('/')) full = full.slice(0, -1);
  if (!isUnder(root, full)) throw new HttpError(404);
  return full;
}

/** True when `target` is `root` or inside it (both absolute, normalized). */
export function isUnder(root: string, target: string): boolean {
  if (target === root) return true;
  if (!target.startsWith(root)) return false;
  return root.endsWith('/') || target.charCodeAt(root.length) === 47; /* '/' */
}

/** True when `target` is `dir` or below it, for invalidation. */
export const isSameOrBelow = isUnder;
