// A directory's entries as browse shows them: read through the site's file cache (so hidden files, and
// symlinks that leave root, are never listed), then sorted and limited as the query asks.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { SiteFiles } from '../../core/files/index.js';

export interface Item {
  readonly name: string;
  readonly size: number;
  readonly url: string;
  readonly mtimeMs: number;
  readonly mode: number;
  readonly isDir: boolean;
  readonly isSymlink: boolean;
}

export const SORTS = ['name', 'namedirfirst', 'size', 'time'] as const;
export type Sort = (typeof SORTS)[number];

/** Stat calls in flight at once for one listing: a huge directory must not flood the thread pool. */
const CONCURRENCY = 32;

export async function readItems(files: SiteFiles, dirPath: string, dirReal: string): Promise<Item[]> {
  const entries = await fs.readdir(dirReal, { withFileTypes: true });
  const items: (Item | undefined)[] = new Array<Item | undefined>(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const i = next++;
      const entry = entries[i];
      let info = files.lookup(path.join(dirPath, entry.name));
      if (info instanceof Promise) info = await info.catch(() => null);
      if (!info) continue;
      items[i] = {
        name: entry.name,
        size: info.size,
        url: `./${encodeURIComponent(entry.name)}${info.isDir ? '/' : ''}`,
        mtimeMs: info.mtimeMs,
        mode: info.mode,
        isDir: info.isDir,
        isSymlink: entry.isSymbolicLink(),
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, entries.length) }, worker));
  return items.filter((i): i is Item => i !== undefined);
}

const lower = (s: string) => s.toLowerCase();
const byName = (a: Item, b: Item) => {
  const x = lower(a.name);
  const y = lower(b.name);
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * Caddy v1's comparators; desc is the exact reverse (so directories come last for size desc). A Map: the
 * sort comes from the query or a cookie, and `__proto__` or `constructor` must be unknown sorts, not
 * something inherited.
 */
const COMPARATORS = new Map<string, (a: Item, b: Item) => number>([
  ['name', byName],
  ['namedirfirst', (a, b) => (a.isDir === b.isDir ? byName(a, b) : a.isDir ? -1 : 1)],
  [
    'size',
    (a, b) => {
      if (a.isDir && b.isDir) return byName(a, b);
      if (a.isDir !== b.isDir) return a.isDir ? -1 : 1;
      return a.size - b.size;
    },
  ],
  ['time', (a, b) => a.mtimeMs - b.mtimeMs],
]);

/** Sorts in place; an unknown sort leaves the file system's order (as Caddy). */
export function sortItems(items: Item[], sort: string, order: string): void {
  const cmp = COMPARATORS.get(sort);
  if (!cmp) return;
  items.sort(order === 'desc' ? (a, b) => cmp(b, a) : cmp);
}

/** IEC sizes as go-humanize's IBytes: `117 B`, `1.0 KiB`, `15 KiB`. */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[unit]}`;
}
