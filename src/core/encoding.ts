// Content negotiation of Accept-Encoding (RFC 9110 §12.5.3), one for the whole server: the file server picks a
// precompressed sidecar with it, `gzip` picks what to compress with. q-values are honoured (q=0 refuses), `*`
// covers codings not named, `identity` rated above every coding means no coding at all, and equal weights go
// to the smaller output: br, then zstd, then gzip.
//
// Deliberately stricter than Caddy v1, which only looked for the substring `gzip` (so `gzip;q=0` got gzip).

/** The codings nodecaddy produces or serves, in order of preference on equal weights. */
export type ContentCoding = 'br' | 'zstd' | 'gzip';
export const CODING_PREFERENCE: readonly ContentCoding[] = ['br', 'zstd', 'gzip'];

/** Browsers send a handful of distinct values: each is parsed once (a bounded cache). */
const CACHE_LIMIT = 256;
const parsed = new Map<string, ReadonlyMap<string, number>>();

/** The weights of an Accept-Encoding value: lower-cased coding → q (0..1); `x-gzip` counts as `gzip`. */
export function acceptWeights(header: string): ReadonlyMap<string, number> {
  const known = parsed.get(header);
  if (known) return known;
  const weights = new Map<string, number>();
  for (const item of header.split(',')) {
    const semi = item.indexOf(';');
    let name = (semi < 0 ? item : item.slice(0, semi)).trim().toLowerCase();
    if (!name) continue;
    if (name === 'x-gzip') name = 'gzip';
    let q = 1;
    if (semi >= 0) {
      const m = /(?:^|;)\s*q\s*=\s*([0-9.]+)\s*(?:;|$)/i.exec(item.slice(semi));
      // A weight out of range or malformed is read leniently: the client listed the coding, so it takes it.
      const value = m ? Number(m[1]) : NaN;
      if (value >= 0) q = Math.min(value, 1);
    }
    weights.set(name, Math.max(weights.get(name) ?? 0, q));
  }
  if (parsed.size >= CACHE_LIMIT) parsed.delete(parsed.keys().next().value!);
  parsed.set(header, weights);
  return weights;
}

/**
 * The coding to use among `available` (in preference order) for this Accept-Encoding value, or undefined for
 * the identity representation.
 */
export function negotiateEncoding<C extends string>(
  header: string | undefined,
  available: readonly C[],
): C | undefined {
  if (!header) return undefined;
  const weights = acceptWeights(header);
  const star = weights.get('*');
  let best: C | undefined;
  let bestQ = 0;
  for (const coding of available) {
    const q = weights.get(coding) ?? star ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  const identity = weights.get('identity');
  if (best !== undefined && identity !== undefined && identity > bestQ) return undefined;
  return best;
}
