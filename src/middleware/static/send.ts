// Writing a file's bytes: whole (from the small-file cache or streamed), one range, or multipart/byteranges.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpResponse } from '../../core/response.js';
import { HttpError } from '../../core/errors.js';
import type { FileInfo, SiteFiles } from '../../core/files/index.js';
import type { RangeSpec } from './range.js';

/**
 * Where the bytes come from: a cached buffer, or an open file (opened before any header goes out).
 * Undefined for HEAD: the same headers, no body.
 */
export type Source = { buf: Buffer; fh?: undefined } | { buf?: undefined; fh: FileHandle } | undefined;

/** Opens the body before headers are written, so a file that vanished is still a clean 404. */
export async function openSource(files: SiteFiles, info: FileInfo): Promise<NonNullable<Source>> {
  let buf = files.body(info);
  if (buf instanceof Promise) buf = await buf;
  if (buf) return { buf };
  try {
    return { fh: await fs.open(info.real, 'r') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new HttpError(403, undefined, { cause: err });
    throw new HttpError(404, undefined, { cause: err });
  }
}

export async function sendWhole(
  res: HttpResponse,
  headers: OutgoingHttpHeaders,
  info: FileInfo,
  source: Source,
): Promise<void> {
  headers['Content-Length'] = info.size;
  res.writeHead(200, headers);
  if (!source) {
    res.end();
    return;
  }
  if (source.buf) {
    res.end(source.buf);
    return;
  }
  await streamRange(res, source.fh, 0, info.size - 1, true);
}

export async function sendRange(
  res: HttpResponse,
  headers: OutgoingHttpHeaders,
  info: FileInfo,
  source: Source,
  [start, end]: RangeSpec,
): Promise<void> {
  headers['Content-Length'] = end - start + 1;
  headers['Content-Range'] = `bytes ${start}-${end}/${info.size}`;
  res.writeHead(206, headers);
  if (!source) {
    res.end();
    return;
  }
  if (source.buf) {
    res.end(source.buf.subarray(start, end + 1));
    return;
  }
  await streamRange(res, source.fh, start, end, true);
}

const boundaryBase = randomBytes(9).toString('base64url');
let boundaryCount = 0;

export async function sendMultipart(
  res: HttpResponse,
  headers: OutgoingHttpHeaders,
  info: FileInfo,
  source: Source,
  ranges: readonly RangeSpec[],
): Promise<void> {
  const boundary = `${boundaryBase}${(boundaryCount++).toString(36)}`;
  const type = String(headers['Content-Type']);
  delete headers['Content-Type'];
  const parts = ranges.map(
    ([start, end], i) =>
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${type}\r\n` +
      `Content-Range: bytes ${start}-${end}/${info.size}\r\n\r\n`,
  );
  const closing = `\r\n--${boundary}--\r\n`;
  let length = Buffer.byteLength(closing);
  ranges.forEach(([start, end], i) => (length += Buffer.byteLength(parts[i]) + end - start + 1));
  headers['Content-Type'] = `multipart/byteranges; boundary=${boundary}`;
  headers['Content-Length'] = length;
  res.writeHead(206, headers);
  if (!source) {
    res.end();
    return;
  }
  try {
    for (let i = 0; i < ranges.length; i++) {
      const [start, end] = ranges[i];
      if (!res.write(parts[i])) await drained(res);
      if (source.buf) {
        if (!res.write(source.buf.subarray(start, end + 1))) await drained(res);
      } else await streamRange(res, source.fh, start, end, false);
    }
    res.end(closing);
  } finally {
    await source.fh?.close();
  }
}

/**
 * Read buffers for streamed files, shared by all responses and reused once their write has completed: a
 * fresh buffer per read costs an mmap, page faults on first touch and garbage-collector pressure (on the
 * 10 MB file benchmark that was about a third of the CPU). The free list is bounded; a buffer whose write
 * failed is left to the collector.
 */
const CHUNK = 512 * 1024;
const MAX_FREE_CHUNKS = 16;
const freeChunks: Buffer[] = [];

function takeChunk(): Buffer {
  return freeChunks.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function giveBack(chunk: Buffer): void {
  if (freeChunks.length < MAX_FREE_CHUNKS) freeChunks.push(chunk);
}

interface Read {
  chunk: Buffer;
  bytes: number;
}

/** Reads up to CHUNK bytes at `pos` (never past `end`) into a pooled buffer. */
async function readChunk(fh: FileHandle, pos: number, end: number): Promise<Read> {
  const chunk = takeChunk();
  try {
    const { bytesRead } = await fh.read(chunk, 0, Math.min(CHUNK, end - pos + 1), pos);
    return { chunk, bytes: bytesRead };
  } catch (err) {
    giveBack(chunk);
    throw err;
  }
}

/**
 * Writes bytes start..end (inclusive) with backpressure: the next read overlaps the current write, and at
 * most one read waits while the socket is full (two buffers per response). A failure mid-body, or a file
 * that shrank under us, cuts the connection: a short body must never pass for a whole one.
 */
async function streamRange(
  res: HttpResponse,
  fh: FileHandle,
  start: number,
  end: number,
  last: boolean,
): Promise<void> {
  let next: Promise<Read> | undefined;
  try {
    let pos = start;
    if (pos <= end) next = readChunk(fh, pos, end);
    while (next) {
      const { chunk, bytes } = await next;
      next = undefined;
      if (bytes === 0) {
        giveBack(chunk);
        res.destroy(); // the file shrank
        return;
      }
      pos += bytes;
      if (pos <= end) next = readChunk(fh, pos, end);
      const ok = res.write(bytes === CHUNK ? chunk : chunk.subarray(0, bytes), (err) => {
        if (!err) giveBack(chunk);
      });
      if (!ok) await drained(res);
    }
    if (last) res.end();
  } catch (err) {
    // A client that went away is not an error.
    if (!res.destroyed && !res.writableFinished) res.destroy(err as Error);
  } finally {
    // A read still under way writes into its buffer and holds the descriptor: let it finish first.
    if (next) await next.then((r) => giveBack(r.chunk)).catch(() => undefined);
    if (last) await fh.close().catch(() => undefined);
  }
}

function drained(res: HttpResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) {
      reject(new Error('client closed the connection'));
      return;
    }
    const done = (err?: Error) => {
      res.off('drain', done);
      res.off('close', closed);
      if (err) reject(err);
      else resolve();
    };
    const closed = () => done(new Error('client closed the connection'));
    res.once('drain', done);
    res.once('close', closed);
  });
}
