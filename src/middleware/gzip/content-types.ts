// Content types `gzip` leaves alone. (Which coding a client gets is core/encoding.ts.)

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
