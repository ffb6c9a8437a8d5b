// "Does this URL path name a file under the site root?", asked by `rewrite` (its `to` candidates) and `ext`,
// through the site's files (src/core/files): the same cache, hidden files and symlink rule as the file server.
import type { FileInfo, SiteFiles } from './files/index.js';

/** What a decoded URL path names under the site root, or undefined when it is missing, hidden or unusable. */
export async function lookupFile(files: SiteFiles, urlPath: string): Promise<FileInfo | undefined> {
  try {
    let info = files.lookup(files.join(urlPath));
    if (info instanceof Promise) info = await info;
    return info ?? undefined;
  } catch {
    // A path that can name no file (400/404 from join), or one the file system refuses (403/503): not a candidate.
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
