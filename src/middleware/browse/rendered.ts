// Listings rendered earlier, kept for reuse while the directory's entries stay the same.
//
// Rendering the page (a view object per entry, two dates, HTML escaping, one string of ~35 KB for 100 files)
// was over a third of a listing's CPU. The entries are still read and checked on every request (readdir and
// the file cache's stats): when every entry's name, size, time and mode equal those the kept page was made
// from, under the same sort, order, limit and path, the kept bytes are sent again. Else it renders anew.
import type { Item } from './listing.js';

/** Listings kept per site (the least recently used goes first): ~35 KB each for 100 entries. */
const MAX_KEPT = 32;

interface Kept {
  readonly items: readonly Item[];
  readonly body: Buffer;
}

export class RenderedListings {
  private readonly kept = new Map<string, Kept>();

  /** The body kept for `key` if it was made from exactly these items. */
  get(key: string, items: readonly Item[]): Buffer | undefined {
    const k = this.kept.get(key);
    if (!k || !sameItems(k.items, items)) return undefined;
    this.kept.delete(key);
    this.kept.set(key, k);
    return k.body;
  }

  set(key: string, items: readonly Item[], body: Buffer): void {
    this.kept.delete(key);
    this.kept.set(key, { items, body });
    if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value!);
  }
}

function sameItems(a: readonly Item[], b: readonly Item[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (
      x.name !== y.name ||
      x.size !== y.size ||
      x.mtimeMs !== y.mtimeMs ||
      x.mode !== y.mode ||
      x.isDir !== y.isDir ||
      x.isSymlink !== y.isSymlink
    )
      return false;
  }
  return true;
}
