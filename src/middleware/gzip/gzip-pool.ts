// gzip of whole bodies: with libdeflate where its binding is built (./libdeflate.ts), else with reused zlib
// compressors.
//
// A fresh zlib compressor per response costs its setup (about 260 KB of zlib state allocated, zeroed and
// freed again) and, worse, that memory is reported to V8 as external memory: at a few thousand compressed
// responses a second its churn alone triggered several full GCs a second. A compressor that finished a body
// (flush with Z_FINISH) and is reset (deflateReset) starts the next body as new: measured on a 100 KB page,
// about a third less CPU per response than zlib.gzip().
//
// At most MAX_BUSY bodies are compressed at once, with either; the others wait their turn here. They would
// wait anyway: libuv's thread pool runs four jobs at a time. So under any load this process holds at most
// MAX_BUSY zlib compressors (about 270 KB each), not one per response in flight, and never queues more than
// MAX_BUSY compressions ahead of the file reads that share the thread pool.
import zlib from 'node:zlib';
import { IdleTrim } from '../../core/idle-trim.js';
import { libdeflate } from './libdeflate.js';

/** Bodies compressed at once (by this module); compressors kept idle per level, at most. */
const MAX_BUSY = 8;
/** Idle compressors (zlib's here, libdeflate's in the binding) not used for this long are freed. */
const IDLE_MS = 30_000;

/** A gzip compressor; node:zlib has reset() on every deflate stream, @types/node declares it apart. */
type Gzip = zlib.Gzip & zlib.ZlibReset;

const idle = new Map<number, Gzip[]>();
interface Job {
  level: number;
  body: Buffer;
  done: (err: Error | null, out: Buffer) => void;
}
/** Bodies waiting for a compressor, first come first served. */
const waiting: Job[] = [];
let busy = 0;
const trim = new IdleTrim(IDLE_MS, () => {
  for (const list of idle.values()) for (const z of list.splice(0)) z.close();
  libdeflate?.trim();
});

function take(level: number): Gzip {
  trim.used();
  return idle.get(level)?.pop() ?? (zlib.createGzip({ level }) as Gzip);
}

function release(level: number, z: Gzip): void {
  let list = idle.get(level);
  if (!list) {
    list = [];
    idle.set(level, list);
  }
  if (list.length >= MAX_BUSY) {
    z.close();
    return;
  }
  z.reset();
  list.push(z);
  trim.arm();
}

/** gzip of `body` at `level`, in the thread pool: libdeflate's, else the same bytes zlib.gzip would give. */
export function gzipWhole(level: number, body: Buffer, done: (err: Error | null, out: Buffer) => void): void {
  if (busy >= MAX_BUSY) {
    waiting.push({ level, body, done });
    return;
  }
  busy++;
  const finished = (err: Error | null, out: Buffer) => {
    busy--;
    const next = waiting.shift();
    if (next) gzipWhole(next.level, next.body, next.done);
    done(err, out);
  };
  if (libdeflate) {
    // The binding keeps its compressors for reuse, as take() and release() do below.
    trim.used();
    trim.arm();
    libdeflate.gzip(body, level, finished);
  } else zlibGzipWhole(level, body, finished);
}

/** gzip of `body` with a reused zlib compressor (exported for the tests of the path without libdeflate). */
export function zlibGzipWhole(
  level: number,
  body: Buffer,
  done: (err: Error | null, out: Buffer) => void,
): void {
  const z = take(level);
  const out: Buffer[] = [];
  let failed = false;
  const onData = (chunk: Buffer) => out.push(chunk);
  const onError = (err: Error) => {
    failed = true;
    z.off('data', onData);
    z.destroy();
    done(err, Buffer.alloc(0));
  };
  z.on('data', onData);
  z.once('error', onError);
  z.write(body);
  z.flush(zlib.constants.Z_FINISH, () => {
    if (failed) return;
    z.off('data', onData);
    z.off('error', onError);
    release(level, z);
    done(null, out.length === 1 ? out[0] : Buffer.concat(out));
  });
}
