// A chunked request body has no length, and php-fpm reads exactly CONTENT_LENGTH bytes of STDIN (it gives
// PHP nothing without one). So such a body is first written to a temporary file (as nginx does), then sent
// from there with its real length. Memory stays flat whatever the size; `limits` still applies while reading.
//
// The disk is what such a body fills, so a spooled body has a maximum of its own (DEFAULT_SPOOL_MAX unless
// `limits` gives the request one), and the temporary file system must keep some room: a spool is refused
// when the file system is nearly full, and cut when it becomes so while the body is written.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '../../core/errors.js';

/** What a chunked body may grow to on disk when `limits` sets nothing smaller or larger: 1 GiB. */
export const DEFAULT_SPOOL_MAX = 1024 * 1024 * 1024;

export interface SpoolLimits {
  /** The body's maximum size (413 beyond). */
  readonly maxBytes: number;
  /** The file system is nearly full below this many available bytes… */
  readonly minFreeBytes: number;
  /** …or below this share of its size. */
  readonly minFreeRatio: number;
  /** Where the temporary files go (the OS temp directory). */
  readonly dir: string;
}

export function spoolLimits(maxBodyBytes: number): SpoolLimits {
  return {
    maxBytes: Number.isFinite(maxBodyBytes) ? maxBodyBytes : DEFAULT_SPOOL_MAX,
    minFreeBytes: 1024 * 1024 * 1024,
    minFreeRatio: 0.05,
    dir: os.tmpdir(),
  };
}

/** Free space is looked at again each time this much more has been written. */
const RECHECK_BYTES = 64 * 1024 * 1024;

export interface Spooled {
  readonly length: number;
  /** A fresh stream of the body (one per call). */
  open(): Readable;
  /** Removes the temporary file. */
  dispose(): Promise<void>;
}

export async function spoolBody(body: Readable, limits: SpoolLimits): Promise<Spooled> {
  await ensureRoom(limits);
  const dir = await mkdtemp(path.join(limits.dir, 'nodecaddy-fcgi-'));
  const file = path.join(dir, 'body');
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    await pipeline(body, guard(limits), createWriteStream(file));
    const { size } = await stat(file);
    return { length: size, open: () => createReadStream(file, { highWaterMark: 64 * 1024 }), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * 503 (with Retry-After) when the temporary file system is nearly full: the server cannot take the body
 * now, which is temporary and says nothing about the request (507 is WebDAV's, for storing the resource).
 */
async function ensureRoom(limits: SpoolLimits): Promise<void> {
  const fs = await statfs(limits.dir);
  const available = fs.bavail * fs.bsize;
  if (available < limits.minFreeBytes || available < fs.blocks * fs.bsize * limits.minFreeRatio) {
    throw new HttpError(503, `not enough free space in ${limits.dir} to spool the request body`, {
      headers: { 'Retry-After': '60' },
    });
  }
}

/** Passes the body through, refusing it past maxBytes (413) and looking at free space as it grows. */
function guard(limits: SpoolLimits): Transform {
  let seen = 0;
  let nextCheck = RECHECK_BYTES;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > limits.maxBytes) {
        done(new HttpError(413, 'request body too large to spool', { headers: { Connection: 'close' } }));
        return;
      }
      if (seen < nextCheck) {
        done(null, chunk);
        return;
      }
      nextCheck = seen + RECHECK_BYTES;
      ensureRoom(limits).then(
        () => done(null, chunk),
        (err: unknown) => done(err as Error),
      );
    },
  });
}
