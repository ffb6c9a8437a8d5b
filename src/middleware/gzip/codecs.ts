// The compressors `gzip` can use: gzip always, brotli always, zstd where the running Node has it (22.15+).
// `level` (1-9) is gzip's level, brotli's quality and zstd's level alike.
import zlib from 'node:zlib';
import type { ContentCoding } from '../../core/encoding.js';
import { gzipWhole } from './gzip-pool.js';

/** A streaming compressor: every one is a Transform with flush(kind). */
export type Compressor = zlib.Gzip | zlib.BrotliCompress;
/** A zstd compressor has the same stream interface as the others (@types/node for Node 20 lacks its type). */
type ZstdCompress = zlib.Gzip;
export type Done = (err: Error | null, out: Buffer) => void;

/** node:zlib's zstd functions, which @types/node for Node 20 does not declare. */
interface ZstdApi {
  createZstdCompress(options: { params: Record<number, number> }): ZstdCompress;
  zstdCompress(body: Buffer, options: { params: Record<number, number> }, done: Done): void;
}
const zstd =
  typeof (zlib as Partial<ZstdApi>).createZstdCompress === 'function'
    ? (zlib as unknown as ZstdApi)
    : undefined;
const ZSTD_LEVEL = (zlib.constants as Record<string, number>).ZSTD_c_compressionLevel;

/** What this process can produce, in the preference order of core/encoding.ts. */
export const AVAILABLE_CODINGS: readonly ContentCoding[] = zstd ? ['br', 'zstd', 'gzip'] : ['br', 'gzip'];

export function createCompressor(coding: ContentCoding, level: number): Compressor {
  switch (coding) {
    case 'br':
      return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } });
    case 'zstd':
      return zstd!.createZstdCompress({ params: { [ZSTD_LEVEL]: level } });
    case 'gzip':
      return zlib.createGzip({ level });
  }
}

/** Compresses a whole body in the thread pool. */
export function compressWhole(coding: ContentCoding, level: number, body: Buffer, done: Done): void {
  switch (coding) {
    case 'br':
      zlib.brotliCompress(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } }, done);
      return;
    case 'zstd':
      zstd!.zstdCompress(body, { params: { [ZSTD_LEVEL]: level } }, done);
      return;
    case 'gzip':
      gzipWhole(level, body, done);
  }
}

/** Pushes out what the compressor holds, keeping its dictionary (the stream goes on). */
export function flushCompressor(z: Compressor, coding: ContentCoding): void {
  if (coding === 'gzip') z.flush(zlib.constants.Z_SYNC_FLUSH);
  else if (coding === 'br') z.flush(zlib.constants.BROTLI_OPERATION_FLUSH);
  else z.flush((zlib.constants as Record<string, number>).ZSTD_e_flush);
}
