// Precompressed sidecars: `file.br`, `file.zst`, `file.gz` next to `file`, chosen by Accept-Encoding q-values.
import type { FileInfo, SiteFiles } from '../../core/files/index.js';

export interface Variant {
  readonly encoding: string;
  readonly info: FileInfo;
}

/** Preference order when q-values tie (smallest output first). */
const SIDECARS: readonly (readonly [encoding: string, suffix: string])[] = [
  ['br', '.br'],
  ['zstd', '.zst'],
  ['gzip', '.gz'],
];

const NONE: readonly Variant[] = [];
/** Per file info: a sidecar's change replaces its original's info in the cache, so this memo stays true. */
const memo = new WeakMap<FileInfo, readonly Variant[]>();

export function variantsOf(
  files: SiteFiles,
  info: FileInfo,
): readonly Variant[] | Promise<readonly Variant[]> {
  const known = memo.get(info);
  if (known) return known;
  return findVariants(files, info);
}

async function findVariants(files: SiteFiles, info: FileInfo): Promise<readonly Variant[]> {
  const found: Variant[] = [];
  for (const [encoding, suffix] of SIDECARS) {
    let side = files.lookup(info.path + suffix);
    if (side instanceof Promise) side = await side;
    if (side?.isFile) found.push({ encoding, info: side });
  }
  const variants = found.length === 0 ? NONE : found;
  memo.set(info, variants);
  return variants;
}

/** The variant the client prefers (highest q, then our order), or undefined for the identity file. */
export function chooseVariant(
  acceptEncoding: string | undefined,
  variants: readonly Variant[],
): Variant | undefined {
  if (!acceptEncoding) return undefined;
  const q = qValues(acceptEncoding);
  let best: Variant | undefined;
  let bestQ = 0;
  for (const v of variants) {
    const vq = q.get(v.encoding) ?? q.get('*') ?? 0;
    if (vq > bestQ) {
      best = v;
      bestQ = vq;
    }
  }
  const identity = q.get('identity');
  if (best && identity !== undefined && identity > bestQ) return undefined;
  return best;
}

/** Browsers send a handful of distinct Accept-Encoding values: parse each once. */
const parsed = new Map<string, ReadonlyMap<string, number>>();

function qValues(header: string): ReadonlyMap<string, number> {
  const known = parsed.get(header);
  if (known) return known;
  const q = new Map<string, number>();
  for (const item of header.split(',')) {
    const [rawName, ...params] = item.split(';');
    let name = rawName.trim().toLowerCase();
    if (!name) continue;
    if (name === 'x-gzip') name = 'gzip';
    let value = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(p);
      if (m) value = Number(m[1]);
    }
    q.set(name, Math.min(1, value));
  }
  if (parsed.size >= 256) parsed.clear();
  parsed.set(header, q);
  return q;
}
