// Captured bodies as the inspector shows them: compressed ones (gzip, deflate, br) decoded, even when only
// their first part was kept (decoded as far as it goes), and never grown past a bound.
import zlib from 'node:zlib';
import { bodyBytes, isCut, type CapturedBody } from './capture.js';

/** Decoded output beyond this is dropped: a small body can expand enormously. */
const MAX_DECODED = 16 * 1024 * 1024;

export interface ShownBody {
  bytes: Buffer;
  /** The Content-Encoding that was undone, if any. */
  decoded: string | undefined;
  /** Only the first part was kept (or decoded). */
  cut: boolean;
  /** Why decoding failed; `bytes` are then the raw ones. */
  error: string | undefined;
}

function decoder(encoding: string): ((buf: Buffer, cb: zlib.CompressCallback) => void) | undefined {
  const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: MAX_DECODED };
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return (buf, cb) => zlib.gunzip(buf, flush, cb);
    case 'deflate':
      return (buf, cb) => zlib.inflate(buf, flush, cb);
    case 'br':
      return (buf, cb) =>
        zlib.brotliDecompress(
          buf,
          { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, maxOutputLength: MAX_DECODED },
          cb,
        );
    default:
      return undefined;
  }
}

export async function shownBody(body: CapturedBody, contentEncoding: unknown): Promise<ShownBody> {
  const raw = bodyBytes(body);
  const cut = isCut(body);
  const encoding = typeof contentEncoding === 'string' ? contentEncoding.trim().toLowerCase() : '';
  const decode = encoding ? decoder(encoding) : undefined;
  if (!decode || raw.length === 0) return { bytes: raw, decoded: undefined, cut, error: undefined };
  return new Promise((resolve) =>
    decode(raw, (err, out) => {
      if (err)
        resolve({ bytes: raw, decoded: undefined, cut, error: `cannot decode ${encoding}: ${err.message}` });
      else
        resolve({ bytes: out, decoded: encoding, cut: cut || out.length >= MAX_DECODED, error: undefined });
    }),
  );
}
