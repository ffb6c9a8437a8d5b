// Compresses one response, whoever writes it (static files, browse, proxy, fastcgi, tunnel, error pages).
//
// res.write/res.end/res.flushHeaders are wrapped for this response; the decision to compress is taken when
// the headers go out (core/response-hooks beforeWriteHead), when status, Content-Type, Content-Length and
// Content-Encoding are known. When compressing, bytes flow: producer → res.write (wrapper) → zlib stream
// (async, on the thread pool) → the original res.write → socket.
//
// Backpressure holds end to end: the wrapper returns the zlib stream's write() result and emits 'drain' on
// the response when zlib drains; when the socket is full, zlib's output is paused until the response drains,
// so zlib's input fills and the producer is told to wait. A slow reader never makes us buffer the whole body.
//
// A body of known length up to WHOLE_BODY_LIMIT written in parts (from an https upstream or php-fpm, a file
// beyond the cache) is collected and compressed in one go, like a body given whole to end(): one pass through
// the thread pool, one write to the socket. Streamed in bursts it cost about twice the CPU (a thread-pool
// round trip and a socket write for every burst and every flush).
//
// Other bodies are streamed. A body of unknown length arrives as it is written: after every burst of writes
// (one turn of the event loop) the compressor is flushed (Z_SYNC_FLUSH / BROTLI_OPERATION_FLUSH, which keeps
// the dictionary); for event streams and responses whose producer called flushHeaders, after every single
// write. A long body of known length is not flushed: its end is coming, and the compressor's output goes out
// as it fills.
import type { ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import type { RequestContext } from '../../core/context.js';
import { derivedOf, isCachedBody, keepDerived } from '../../core/files/index.js';
import { beforeWriteHead } from '../../core/response-hooks.js';
import { gzipWhole } from './gzip-pool.js';
import { isIncompressibleType, type Encoding } from './negotiate.js';

export interface CompressSettings {
  /** 1–9, used for gzip and as the brotli quality. */
  readonly level: number;
  /** 0 = none; else compress only responses with a Content-Length of at least this (as Caddy v1). */
  readonly minLength: number;
}

/** Bodies of a known length up to this are compressed whole (see the top of the file). */
const WHOLE_BODY_LIMIT = 256 * 1024;

type Compressor = zlib.Gzip | zlib.BrotliCompress;
type Callback = (err?: Error | null) => void;

function createCompressor(encoding: Encoding, level: number): Compressor {
  if (encoding === 'br')
    return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } });
  return zlib.createGzip({ level });
}

type Done = (err: Error | null, out: Buffer) => void;

function compressWhole(encoding: Encoding, level: number, body: Buffer, done: Done): void {
  if (encoding === 'br') {
    zlib.brotliCompress(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } }, done);
  } else gzipWhole(level, body, done);
}

/** Compressions of cached file bodies under way, by body and key: later requests wait for the same one. */
const pending = new WeakMap<Buffer, Map<string, Done[]>>();

/**
 * Compresses a body given whole. A file body the file cache holds is compressed once per encoding and
 * level: the copy is kept beside it (core/files/derived.ts) and later requests are answered from it, at
 * once and without the thread pool. Any other body (proxied, error pages, files beyond the cache) is
 * compressed every time.
 */
function compressBody(encoding: Encoding, level: number, body: Buffer, done: Done): void {
  if (!isCachedBody(body)) {
    compressWhole(encoding, level, body, done);
    return;
  }
  const key = `${encoding}/${level}`;
  const kept = derivedOf(body, key);
  if (kept) {
    done(null, kept);
    return;
  }
  let byKey = pending.get(body);
  const waiting = byKey?.get(key);
  if (waiting) {
    waiting.push(done);
    return;
  }
  if (!byKey) {
    byKey = new Map();
    pending.set(body, byKey);
  }
  const waiters = [done];
  byKey.set(key, waiters);
  const started = byKey;
  compressWhole(encoding, level, body, (err, out) => {
    started.delete(key);
    if (!err) keepDerived(body, key, out);
    for (const w of waiters) w(err, out);
  });
}

function flushCompressor(z: Compressor): void {
  if (z instanceof zlib.Gzip) z.flush(zlib.constants.Z_SYNC_FLUSH);
  else z.flush(zlib.constants.BROTLI_OPERATION_FLUSH);
}

/** Adds `Accept-Encoding` to Vary unless it is there already (or Vary is `*`). */
export function addVary(res: ServerResponse): void {
  const current = res.getHeader('vary');
  if (current === undefined) {
    res.setHeader('Vary', 'Accept-Encoding');
    return;
  }
  const list = Array.isArray(current) ? current : [String(current)];
  const names = list.flatMap((v) => v.split(',')).map((v) => v.trim().toLowerCase());
  if (names.includes('accept-encoding') || names.includes('*')) return;
  res.setHeader('Vary', [...list, 'Accept-Encoding']);
}

/** A strong validator becomes weak: the compressed bytes differ from the identity representation's. */
function weakenEtag(res: ServerResponse): void {
  const etag = res.getHeader('etag');
  if (typeof etag === 'string' && etag !== '' && !etag.startsWith('W/')) res.setHeader('ETag', `W/${etag}`);
}

function toBuffer(chunk: unknown, enc: BufferEncoding | undefined): Buffer {
  if (chunk === undefined || chunk === null) return Buffer.alloc(0);
  if (typeof chunk === 'string') return Buffer.from(chunk, enc ?? 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
}

/** Whether the response, as its headers stand, should be compressed (apart from the request checks). */
function compressible(res: ServerResponse, settings: CompressSettings, emptyBody: boolean): boolean {
  const status = res.statusCode;
  if (status < 200 || status === 204 || status === 206 || status === 304) return false;
  if (emptyBody || res.hasHeader('content-range')) return false;
  const encoding = res.getHeader('content-encoding');
  if (encoding !== undefined && String(encoding).toLowerCase() !== 'identity') return false;
  const cacheControl = res.getHeader('cache-control');
  if (cacheControl !== undefined && /no-transform/i.test(String(cacheControl))) return false;
  const lengthHeader = res.getHeader('content-length');
  const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
  if (length === 0) return false;
  if (settings.minLength > 0 && !(length !== undefined && length >= settings.minLength)) return false;
  const type = res.getHeader('content-type');
  return !(type !== undefined && isIncompressibleType(String(type)));
}

/** Wraps ctx.res so that its body is compressed with `encoding` if the response qualifies. */
export function compressResponse(ctx: RequestContext, encoding: Encoding, settings: CompressSettings): void {
  const res = ctx.res;
  const head = ctx.req.method === 'HEAD';
  /* eslint-disable @typescript-eslint/unbound-method -- the originals are called with Reflect.apply on res */
  const origWrite = res.write;
  const origEnd = res.end;
  const origFlushHeaders = res.flushHeaders;
  /* eslint-enable @typescript-eslint/unbound-method */

  let z: Compressor | undefined;
  /** Decided at writeHead; the stream compressor itself is made on the first write() (see end()). */
  let compressing = false;
  let emptyBody = false;
  let streaming = false;
  let flushScheduled = false;
  let ended = false;
  let producerWaiting = false;
  let socketWaiting = false;
  /** The body so far while it is collected to be compressed whole; undefined once streaming. */
  let collected: Buffer[] | undefined;
  let collectedBytes = 0;
  /** A long body of known length: the compressor is not flushed after every burst. */
  let knownLength = false;

  beforeWriteHead(res, () => {
    if (head) {
      // A HEAD is never compressed (Caddy #2892), but says that the GET would vary.
      addVary(res);
      return;
    }
    if (res.statusCode === 304) {
      // Same validators and Vary as the 200 it confirms.
      addVary(res);
      weakenEtag(res);
      return;
    }
    if (!compressible(res, settings, emptyBody)) return;
    const lengthHeader = res.getHeader('content-length');
    const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
    res.removeHeader('content-length');
    res.removeHeader('accept-ranges');
    res.setHeader('Content-Encoding', encoding);
    addVary(res);
    weakenEtag(res);
    const type = res.getHeader('content-type');
    if (type !== undefined && /^text\/event-stream/i.test(String(type))) streaming = true;
    compressing = true;
    if (length !== undefined && Number.isFinite(length) && !streaming) {
      knownLength = true;
      if (length <= WHOLE_BODY_LIMIT) collected = [];
    }
  });

  function compressor(): Compressor {
    if (!z) {
      z = createCompressor(encoding, settings.level);
      wire(z);
    }
    return z;
  }

  function wire(c: Compressor): void {
    c.on('data', (chunk: Buffer) => {
      if (Reflect.apply(origWrite, res, [chunk]) === false && !socketWaiting) {
        socketWaiting = true;
        c.pause();
        res.once('drain', onSocketDrain);
      }
    });
    c.on('drain', () => {
      if (!producerWaiting) return;
      producerWaiting = false;
      res.emit('drain');
    });
    c.once('end', () => {
      Reflect.apply(origEnd, res, endCallback ? [endCallback] : []);
    });
    c.once('error', (err) => res.destroy(err));
    res.once('close', () => c.destroy());
  }

  function onSocketDrain(): void {
    // Our own 'drain' (for the producer) may arrive while the socket is still full: keep waiting then.
    if (res.writableNeedDrain) {
      res.once('drain', onSocketDrain);
      return;
    }
    socketWaiting = false;
    z?.resume();
  }

  /** Stops collecting: what was collected goes into a stream compressor, and so will the rest. */
  function spill(): void {
    const chunks = collected!;
    collected = undefined;
    knownLength = false;
    const c = compressor();
    for (const chunk of chunks) c.write(chunk);
  }

  function scheduleFlush(): void {
    if (knownLength) return;
    if (streaming) {
      flushCompressor(z!);
      return;
    }
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      if (!ended && z && !z.destroyed) flushCompressor(z);
    });
  }

  /** Sends the headers now if nobody has, so the hook decides before the first body byte. */
  function ensureHead(): void {
    if (!res.headersSent) res.writeHead(res.statusCode);
  }

  let endCallback: Callback | undefined;

  res.flushHeaders = function flushHeaders(this: ServerResponse): void {
    streaming = true;
    Reflect.apply(origFlushHeaders, this, []);
    // The producer wants its bytes to go out as written.
    if (collected) spill();
    knownLength = false;
  };

  res.write = function write(this: ServerResponse, ...args: unknown[]): boolean {
    ensureHead();
    if (!compressing || ended) return Reflect.apply(origWrite, this, args) as boolean;
    const [chunk, encodingOrCb, maybeCb] = args;
    if (collected) {
      const cb = typeof encodingOrCb === 'function' ? encodingOrCb : maybeCb;
      const enc = typeof encodingOrCb === 'string' ? (encodingOrCb as BufferEncoding) : undefined;
      const buf = toBuffer(chunk, enc);
      collected.push(buf);
      collectedBytes += buf.length;
      // More than the Content-Length said: stream it after all rather than hold an unbounded body.
      if (collectedBytes > WHOLE_BODY_LIMIT) spill();
      if (typeof cb === 'function') process.nextTick(cb);
      return true;
    }
    const c = compressor();
    const ok =
      typeof encodingOrCb === 'function'
        ? c.write(chunk, encodingOrCb as Callback)
        : c.write(chunk, encodingOrCb as BufferEncoding, maybeCb as Callback | undefined);
    scheduleFlush();
    if (!ok) producerWaiting = true;
    return ok;
  } as ServerResponse['write'];

  res.end = function end(this: ServerResponse, ...args: unknown[]): ServerResponse {
    let [chunk, enc, cb] = args;
    if (typeof chunk === 'function') [chunk, enc, cb] = [undefined, undefined, chunk];
    else if (typeof enc === 'function') [enc, cb] = [undefined, enc];
    if (!res.headersSent) {
      emptyBody = chunk === undefined || chunk === null || (chunk as { length?: number }).length === 0;
      ensureHead();
    }
    if (!compressing || ended) return Reflect.apply(origEnd, this, args) as ServerResponse;
    ended = true;
    endCallback = cb as Callback | undefined;
    if (!z) {
      // The whole body in one end() (files from the cache, error pages, small proxied bodies), or collected
      // (see the top of the file): one-shot compression in the thread pool, without a stream's setup and
      // chunking.
      const last = toBuffer(chunk, enc as BufferEncoding | undefined);
      const body = collected?.length ? Buffer.concat([...collected, last]) : last;
      collected = undefined;
      compressBody(encoding, settings.level, body, (err, out) => {
        if (err) res.destroy(err);
        else Reflect.apply(origEnd, res, endCallback ? [out, endCallback] : [out]);
      });
      return this;
    }
    if (chunk !== undefined && chunk !== null) z.end(chunk, enc as BufferEncoding);
    else z.end();
    return this;
  } as ServerResponse['end'];
}
