// Our HTTP/1.1 clients' memory (the proxy's, the tunnel client's): one read buffer shared by every upstream
// socket of the process, and reused buffers for whole response bodies and streamed parts.
//
// Why: a Node socket allocates a fresh 64 KB buffer for every read. Proxying 100 KB pages at a few thousand
// a second per worker, those reads (and the copies made of them) were hundreds of MB a second of garbage
// outside the JS heap, freed only when V8 next collected; the worker's malloc heap grew to ~50 MB of it.
// Now a read lands in READ_BUFFER (sockets are created with `onread`), the parser hands out views of it that
// are valid only until the read callback returns, and whatever must outlive that is copied: into a body
// buffer taken here when the length is known and small (given back once the client response has finished
// with it), else into a buffer of its own.
import { IdleTrim } from '../idle-trim.js';

/** Every upstream read of this process lands here; its contents are valid only during the read callback. */
export const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);

/** Bodies of a known length up to this are collected whole in a reused buffer and written in one go. */
export const WHOLE_BODY_LIMIT = 256 * 1024;
/** Smaller bodies take a plain buffer (Node's own pool serves the smallest): not worth keeping. */
const SMALLEST_KEPT = 8 * 1024;
/** Sizes of the kept buffers: powers of two from 16 KB to WHOLE_BODY_LIMIT. */
const SIZES = [16, 32, 64, 128, 256].map((k) => k * 1024);
/** Idle buffers kept, in bytes over all sizes; the rest are left to the garbage collector. */
const MAX_IDLE_BYTES = 4 * 1024 * 1024;
/** Idle buffers unused for this long are dropped. */
const IDLE_MS = 30_000;

const idle: Buffer[][] = SIZES.map(() => []);
let idleBytes = 0;
const trim = new IdleTrim(IDLE_MS, () => {
  for (const list of idle) list.length = 0;
  idleBytes = 0;
});

/** A buffer for a body of `length` bytes (WHOLE_BODY_LIMIT at most): the body is its first `length` bytes. */
export function takeBodyBuffer(length: number): Buffer {
  if (length <= SMALLEST_KEPT) return Buffer.allocUnsafe(length);
  const i = SIZES.findIndex((size) => size >= length);
  trim.used();
  const kept = idle[i].pop();
  if (kept) {
    idleBytes -= kept.length;
    return kept;
  }
  return Buffer.allocUnsafeSlow(SIZES[i]);
}

/** Gives back a buffer from takeBodyBuffer once nothing reads it any more (smaller ones are ignored). */
export function releaseBodyBuffer(buf: Buffer): void {
  const i = SIZES.indexOf(buf.length);
  if (i < 0 || idleBytes + buf.length > MAX_IDLE_BYTES) return;
  idle[i].push(buf);
  idleBytes += buf.length;
  trim.arm();
}

/** A streamed body's parts are copied out of READ_BUFFER into these (one read's most), reused once written. */
const STREAM_CHUNK_BYTES = READ_BUFFER.length;
/** Idle stream chunks kept (4 MB); more are left to the garbage collector. */
const MAX_IDLE_STREAM_CHUNKS = 64;
const idleChunks: ArrayBuffer[] = [];
const trimChunks = new IdleTrim(IDLE_MS, () => (idleChunks.length = 0));

/**
 * A copy of `view` (a part of READ_BUFFER) in a reused chunk. A fresh buffer per read, as before, was a
 * 64 KB malloc each, freed only at the next GC: a 500 MB download left the worker's heap ~40 MB bigger.
 */
export function copyStreamChunk(view: Buffer): Buffer {
  trimChunks.used();
  const ab = idleChunks.pop() ?? new ArrayBuffer(STREAM_CHUNK_BYTES);
  const chunk = Buffer.from(ab, 0, view.length);
  view.copy(chunk);
  return chunk;
}

/** Gives back a chunk from copyStreamChunk once its bytes were handed to the socket. */
export function releaseStreamChunk(chunk: Buffer): void {
  if (chunk.buffer.byteLength !== STREAM_CHUNK_BYTES || idleChunks.length >= MAX_IDLE_STREAM_CHUNKS) return;
  idleChunks.push(chunk.buffer as ArrayBuffer);
  trimChunks.arm();
}

/** A copy of a part of READ_BUFFER, and what gives its buffer back once nothing reads it (if anything). */
export interface ReadPart {
  buf: Buffer;
  release: (() => void) | undefined;
}

/** Parts smaller than this are copied into Node's own small-buffer slabs: not worth a pooled chunk. */
const SMALL_PART = 4096;

/** A copy of `view` (a part of READ_BUFFER) for a writer that says when it is done with it (`release`). */
export function copyReadPart(view: Buffer): ReadPart {
  if (view.length < SMALL_PART) return { buf: Buffer.from(view), release: undefined };
  const buf = copyStreamChunk(view);
  return { buf, release: () => releaseStreamChunk(buf) };
}
