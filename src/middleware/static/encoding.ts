// Precompressed sidecars: `file.br`, `file.zst`, `file.gz` next to `file`, chosen by Accept-Encoding q-values.
import { negotiateEncoding } from '../../core/encoding.js';
import type { FileInfo, SiteFiles } from '../../core/files/index.js';

export interface Variant {
  readonly encoding: string;
  readonly info: FileInfo;
}

/** Sidecars looked for, in the preference order of core/encoding.ts (smallest output first). */
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

/** The variant the client prefers (core/encoding.ts), or undefined for the identity file. */
export function chooseVariant(
  acceptEncoding: string | undefined,
  variants: readonly Variant[],
): Variant | undefined {
  if (!acceptEncoding || variants.length === 0) return undefined;
  const coding = negotiateEncoding(
    acceptEncoding,
    variants.map((v) => v.encoding),
  );
  return coding === undefined ? undefined : variants.find((v) => v.encoding === coding);
}
