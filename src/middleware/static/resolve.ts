// Maps a request path to a file under the site root, refusing anything that would leave it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HttpError } from '../../core/errors.js';

/**
 * Joins a decoded request path onto root. `..` segments are resolved as if root were `/`, so they can
 * never climb out; the result is then checked again to be under root (defence in depth).
 */
export function joinUnderRoot(root: string, requestPath: string): string {
  if (requestPath.includes('\0')) throw new HttpError(400);
  // Backslashes are ordinary bytes on POSIX, but a path with them is never what a client means to fetch
  // from a Caddy-style server, and on other systems they separate segments: refuse them.
  if (requestPath.includes('\\')) throw new HttpError(400);
  const clean = path.posix.normalize(`/${requestPath}`);
  // A trailing slash is the caller's business (redirects); the file system path never has one.
  const full = path.join(root, clean).replace(/(?<=.)\/+$/, '');
  if (full !== root && !full.startsWith(root.endsWith(path.sep) ? root : root + path.sep))
    throw new HttpError(404);
  return full;
}

/** True when `target` is root or inside it. */
export function isUnder(root: string, target: string): boolean {
  return target === root || target.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Resolves symlinks and refuses a file whose real path leaves the real root. */
export async function realUnderRoot(realRoot: string, file: string): Promise<string> {
  const real = await fs.realpath(file);
  if (!isUnder(realRoot, real)) throw new HttpError(404);
  return real;
}
