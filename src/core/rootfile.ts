// "Does this URL path name a file under the site root?", asked by `rewrite` (its `to` candidates) and `ext`.
// Async, and it never looks outside root: `..` is resolved as if root were `/`, and a symlink whose target
// leaves the real root counts as missing.
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';

/** Absolute file path for a URL path under root, or undefined for a path that can name no file. */
export function fileUnderRoot(root: string, urlPath: string): string | undefined {
  if (urlPath.includes('\0') || urlPath.includes('\\')) return undefined;
  const clean = path.posix.normalize(`/${urlPath}`);
  const full = path.join(root, clean).replace(/(?<=.)\/+$/, '');
  return isUnder(root, full) ? full : undefined;
}

function isUnder(root: string, target: string): boolean {
  return target === root || target.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Resolves a root's real path once per config (roots may be symlinks themselves). */
export function realRootOf(root: string): () => Promise<string> {
  let real: Promise<string> | undefined;
  return () => (real ??= fs.realpath(root).catch(() => root));
}

/**
 * Stats the file a URL path names under root; undefined when it is missing, unreadable, or (through a
 * symlink) outside the real root.
 */
export async function statUnderRoot(
  root: string,
  realRoot: () => Promise<string>,
  urlPath: string,
): Promise<Stats | undefined> {
  const file = fileUnderRoot(root, urlPath);
  if (file === undefined) return undefined;
  try {
    const real = await fs.realpath(file);
    if (!isUnder(await realRoot(), real)) return undefined;
    return await fs.stat(real);
  } catch {
    return undefined;
  }
}

/**
 * A decoded path (what rewrite, ext and X-Accel-Redirect produce) in the escaped form ctx.setUri expects:
 * only the characters that would change its meaning are escaped.
 */
export function escapeDecodedPath(p: string): string {
  return p.replace(/%/g, '%25').replace(/\?/g, '%3F').replace(/#/g, '%23');
}
