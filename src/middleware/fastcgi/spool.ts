// A chunked request body has no length, and php-fpm reads exactly CONTENT_LENGTH bytes of STDIN (it gives
// PHP nothing without one). So such a body is first written to a temporary file (as nginx does), then sent
// from there with its real length. Memory stays flat whatever the size; `limits` still applies while reading.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Spooled {
  readonly length: number;
  /** A fresh stream of the body (one per call). */
  open(): Readable;
  /** Removes the temporary file. */
  dispose(): Promise<void>;
}

export async function spoolBody(body: Readable): Promise<Spooled> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nodecaddy-fcgi-'));
  const file = path.join(dir, 'body');
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    await pipeline(body, createWriteStream(file));
    const { size } = await stat(file);
    return { length: size, open: () => createReadStream(file, { highWaterMark: 64 * 1024 }), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
