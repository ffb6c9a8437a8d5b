// Which encoding a client gets, from its Accept-Encoding header (RFC 9110 §12.5.3, with q-values).
//
// Deliberately stricter than Caddy v1, which only looked for the substring `gzip` (so `gzip;q=0` got gzip):
// an encoding with q=0 is refused, `*` covers encodings not named, and brotli is chosen only when the client
// rates it above gzip (browsers send `gzip, deflate, br` with equal weights and get gzip, as from Caddy v1).

export type Encoding = 'gzip' | 'br';

interface Weights {
  gzip: number;
  br: number;
}

function parseWeights(header: string): Weights {
  let gzip = -1;
  let br = -1;
  let star = -1;
  for (const part of header.split(',')) {
    const semi = part.indexOf(';');
    const name = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (!name) continue;
    let q = 1;
    if (semi >= 0) {
      const m = /(?:^|;)\s*q\s*=\s*([0-9.]+)\s*(?:;|$)/i.exec(part.slice(semi));
      if (m) {
        q = Number(m[1]);
        if (!(q >= 0 && q <= 1)) continue; // a malformed weight: ignore the entry
      }
    }
    if (name === 'gzip' || name === 'x-gzip') gzip = Math.max(gzip, q);
    else if (name === 'br') br = Math.max(br, q);
    else if (name === '*') star = q;
  }
  return { gzip: gzip >= 0 ? gzip : Math.max(star, 0), br: br >= 0 ? br : Math.max(star, 0) };
}

const CACHE_LIMIT = 128;
/** Browsers send a handful of distinct headers; parsing each once is enough. */
const cache = new Map<string, Encoding | undefined>();

/** The encoding to use for this Accept-Encoding value, or undefined for none. */
export function chooseEncoding(header: string | undefined): Encoding | undefined {
  if (!header) return undefined;
  if (cache.has(header)) return cache.get(header);
  const w = parseWeights(header);
  const choice: Encoding | undefined = w.br > w.gzip ? 'br' : w.gzip > 0 ? 'gzip' : undefined;
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(header, choice);
  return choice;
}

/**
 * Types that are already compressed (or gain nothing): images except SVG, audio, video, archives, fonts that
 * carry their own compression. Checked on the response's Content-Type, whatever the request's extension said.
 */
export function isIncompressibleType(contentType: string): boolean {
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type.startsWith('image/'))
    return type !== 'image/svg+xml' && type !== 'image/x-icon' && type !== 'image/bmp';
  if (type.startsWith('video/') || type.startsWith('audio/')) return true;
  return INCOMPRESSIBLE.has(type);
}

const INCOMPRESSIBLE = new Set([
  'application/zip',
  'application/gzip',
  'application/x-gzip',
  'application/x-bzip2',
  'application/x-xz',
  'application/x-7z-compressed',
  'application/x-rar-compressed',
  'application/vnd.rar',
  'application/zstd',
  'application/x-zstd',
  'application/x-brotli',
  'application/x-compress',
  'application/java-archive',
  'application/pdf',
  'font/woff',
  'font/woff2',
  'application/font-woff',
]);
