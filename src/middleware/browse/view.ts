// What a listing template sees: the fields, their schema (checked when a template compiles), and the
// JSON form of the items (Caddy v1's field names).
import { humanSize, type Item, type Sort } from './listing.js';
import type { Schema } from './template.js';

const column = { href: true, class: true, aria: true } as const;

export const LISTING_SCHEMA: Schema = {
  name: true,
  path: true,
  canGoUp: true,
  numDirs: true,
  numFiles: true,
  dirsLabel: true,
  filesLabel: true,
  limited: true,
  itemsLimitedTo: true,
  total: true,
  sort: true,
  order: true,
  breadcrumbs: { link: true, text: true, first: true },
  items: {
    name: true,
    url: true,
    size: true,
    humanSize: true,
    modTime: true,
    modTimeText: true,
    isDir: true,
    isSymlink: true,
    mode: true,
  },
  columns: { name: column, size: column, time: column, dirsFirst: column },
};

export interface ListingInput {
  /** The directory's path as the client sees it (site prefix included), ending in `/`. */
  readonly displayPath: string;
  readonly canGoUp: boolean;
  readonly items: readonly Item[];
  readonly numDirs: number;
  readonly numFiles: number;
  readonly sort: string;
  readonly order: string;
  /** > 0 when the listing was cut to this many items. */
  readonly limitedTo: number;
  /** The `limit` query value, kept by the sort links. */
  readonly limitParam: number | undefined;
}

export function listingView(input: ListingInput): Record<string, unknown> {
  const { displayPath, sort, order } = input;
  const trimmed = displayPath.replace(/\/+$/, '');
  const name = trimmed.slice(trimmed.lastIndexOf('/') + 1) || '/';
  const parts = trimmed.split('/').filter(Boolean);
  const breadcrumbs = [{ text: '/', link: '../'.repeat(parts.length) || './', first: true }];
  parts.forEach((text, i) =>
    breadcrumbs.push({ text, link: '../'.repeat(parts.length - 1 - i) || './', first: false }),
  );

  const limit = input.limitParam === undefined ? '' : `&limit=${input.limitParam}`;
  const col = (key: Sort) => {
    const active = sort === key;
    const nextOrder = active && order !== 'desc' ? 'desc' : 'asc';
    return {
      href: `?sort=${key}&order=${nextOrder}${limit}`,
      class: active ? `sorted ${order === 'desc' ? 'desc' : 'asc'}` : '',
      aria: active ? (order === 'desc' ? 'descending' : 'ascending') : 'none',
    };
  };
  return {
    name,
    path: displayPath,
    canGoUp: input.canGoUp,
    numDirs: input.numDirs,
    numFiles: input.numFiles,
    dirsLabel: input.numDirs === 1 ? 'directory' : 'directories',
    filesLabel: input.numFiles === 1 ? 'file' : 'files',
    limited: input.limitedTo > 0,
    itemsLimitedTo: input.limitedTo,
    total: input.numDirs + input.numFiles,
    sort,
    order,
    breadcrumbs,
    items: input.items.map((item) => {
      const modTime = new Date(item.mtimeMs).toISOString();
      return {
        name: item.name,
        url: item.url,
        size: item.size,
        humanSize: item.isDir ? '—' : humanSize(item.size),
        modTime,
        modTimeText: `${modTime.slice(0, 10)} ${modTime.slice(11, 16)} UTC`,
        isDir: item.isDir,
        isSymlink: item.isSymlink,
        mode: item.mode,
      };
    }),
    columns: {
      name: col('name'),
      size: col('size'),
      time: col('time'),
      dirsFirst: col('namedirfirst'),
    },
  };
}

/** Caddy v1's JSON: an array of {Name, Size, URL, ModTime (RFC 3339), Mode, IsDir, IsSymlink}. */
export function listingJson(items: readonly Item[]): string {
  return JSON.stringify(
    items.map((i) => ({
      Name: i.name,
      Size: i.size,
      URL: i.url,
      ModTime: new Date(i.mtimeMs).toISOString(),
      Mode: i.mode,
      IsDir: i.isDir,
      IsSymlink: i.isSymlink,
    })),
  );
}
