// Compresses one response, whoever writes it (static files, browse, proxy, fastcgi, tunnel, error pages): a
// response filter (core/response.ts). The decision is taken at the header moment, when status, Content-Type,
// Content-Length and Content-Encoding are known; the body then takes one of these paths:
//
// - whole: a body given whole to end() (cached files, error pages, small proxied bodies), or one of known
//   length up to WHOLE_BODY_LIMIT written in parts (collected first), is compressed in one go: one pass
//   through the thread pool, one write to the wire. Streamed in bursts it cost about twice the CPU.
// - stream: other bodies go through a zlib stream, bytes flowing producer → zlib (thread pool) → wire.
//   A body of unknown length is flushed after every burst of writes (one turn of the event loop; Z_SYNC_FLUSH
//   keeps the dictionary); an event stream, or a producer that called flushHeaders, after every write; a long
//   body of known length is not flushed (its end is coming).
//
// Backpressure holds end to end: write() returns the zlib stream's answer and 'drain' is emitted on the
// response when zlib drains; when the wire is full, zlib's output is paused until it drains, so zlib's input
// fills and the producer is told to wait. A slow reader never makes us buffer the whole body.
import type { ContentCoding } from '../../core/encoding.js';
import { derivedOf, isCachedBody, keepDerived } from '../../core/files/index.js';
import type { BodyOut, HeadInfo, HttpResponse, ResponseFilter, WriteDone } from '../../core/response.js';
import { compressWhole, createCompressor, flushCompressor, type Compressor, type Done } from './codecs.js';
import { isIncompressibleType } from './content-types.js';

export interface CompressSettings {
  /** 1–9: gzip's level, brotli's quality, zstd's level. */
  readonly level: number;
  /** 0 = none; else compress only responses with a Content-Length of at least this (as Caddy v1). */
  readonly minLength: number;
}

/** Bodies of a known length up to this are compressed whole (see the top of the file). */
const WHOLE_BODY_LIMIT = 256 * 1024;

/** What the filter does with the body, decided at the header moment. */
type Mode = 'undecided' | 'pass' | 'collect' | 'stream';
/** When a streaming compressor is flushed. */
type FlushPolicy = 'per-burst' | 'each-write' | 'at-end';

/** Compressions of cached file bodies under way, by body and key: later requests wait for the same one. */
const pending = new WeakMap<Buffer, Map<string, Done[]>>();

/**
 * Compresses a body given whole. A file body the file cache holds is compressed once per coding and level:
 * the copy is kept beside it (core/files/derived.ts) and later requests are answered from it, at once and
 * without the thread pool. Any other body (proxied, error pages, files beyond the cache) is compressed every
 * time.
 */
function compressBody(coding: ContentCoding, level: number, body: Buffer, done: Done): void {
  if (!isCachedBody(body)) {
    compressWhole(coding, level, body, done);
    return;
  }
  const key = `${coding}/${level}`;
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
  compressWhole(coding, level, body, (err, out) => {
    started.delete(key);
    if (!err) keepDerived(body, key, out);
    for (const w of waiters) w(err, out);
  });
}

/** Adds `Accept-Encoding` to Vary unless it is there already (or Vary is `*`). */
export function addVary(res: HttpResponse): void {
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
function weakenEtag(res: HttpResponse): void {
  const etag = res.getHeader('etag');
  if (typeof etag === 'string' && etag !== '' && !etag.startsWith('W/')) res.setHeader('ETag', `W/${etag}`);
}

function contentLength(res: HttpResponse): number | undefined {
  const header = res.getHeader('content-length');
  const length = header === undefined ? undefined : Number(header);
  return length !== undefined && Number.isFinite(length) ? length : undefined;
}

/** Whether the response, as its headers stand, should be compressed (apart from the request checks). */
function compressible(res: HttpResponse, settings: CompressSettings, emptyBody: boolean): boolean {
  const status = res.statusCode;
  if (status < 200 || status === 204 || status === 206 || status === 304) return false;
  if (emptyBody || res.hasHeader('content-range')) return false;
  const encoding = res.getHeader('content-encoding');
  if (encoding !== undefined && String(encoding).toLowerCase() !== 'identity') return false;
  const cacheControl = res.getHeader('cache-control');
  if (cacheControl !== undefined && /no-transform/i.test(String(cacheControl))) return false;
  const length = contentLength(res);
  if (length === 0) return false;
  if (settings.minLength > 0 && !(length !== undefined && length >= settings.minLength)) return false;
  const type = res.getHeader('content-type');
  return !(type !== undefined && isIncompressibleType(String(type)));
}

/** The filter that compresses one response with `coding` if it qualifies. */
export class CompressFilter implements ResponseFilter {
  private readonly res: HttpResponse;
  private readonly coding: ContentCoding;
  private readonly settings: CompressSettings;
  private mode: Mode = 'undecided';
  private flushPolicy: FlushPolicy = 'per-burst';
  /** The body so far while it is collected to be compressed whole, and the callbacks of its parts. */
  private collected: Buffer[] = [];
  private collectedBytes = 0;
  private collectedDone: WriteDone[] = [];
  private z: Compressor | undefined;
  private flushScheduled = false;
  private ended = false;
  private producerWaiting = false;

  constructor(res: HttpResponse, coding: ContentCoding, settings: CompressSettings) {
    this.res = res;
    this.coding = coding;
    this.settings = settings;
  }

  head(res: HttpResponse, info: HeadInfo): void {
    this.mode = 'pass';
    if (res.req.method === 'HEAD') {
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
    if (!compressible(res, this.settings, info.emptyBody)) return;
    const length = contentLength(res);
    res.removeHeader('content-length');
    res.removeHeader('accept-ranges');
    res.setHeader('Content-Encoding', this.coding);
    addVary(res);
    weakenEtag(res);
    const type = res.getHeader('content-type');
    const eventStream = type !== undefined && /^text\/event-stream/i.test(String(type));
    this.mode = 'stream';
    if (eventStream) this.flushPolicy = 'each-write';
    else if (length !== undefined) {
      this.flushPolicy = 'at-end';
      if (length <= WHOLE_BODY_LIMIT) this.mode = 'collect';
    }
  }

  write(chunk: Buffer, done: WriteDone | undefined, out: BodyOut): boolean {
    switch (this.mode) {
      case 'undecided':
      case 'pass':
        return out.write(chunk, done);
      case 'collect':
        this.collected.push(chunk);
        this.collectedBytes += chunk.length;
        // The chunk is referenced until the body is compressed: its callback waits until then.
        if (done) this.collectedDone.push(done);
        // More than the Content-Length said: stream it after all rather than hold an unbounded body.
        if (this.collectedBytes > WHOLE_BODY_LIMIT) this.spill(out);
        return true;
      case 'stream': {
        const ok = this.compressor(out).write(chunk, done);
        this.scheduleFlush();
        if (!ok) this.producerWaiting = true;
        return ok;
      }
    }
  }

  end(chunk: Buffer | undefined, out: BodyOut): void {
    if (this.mode === 'pass' || this.mode === 'undecided') {
      out.end(chunk);
      return;
    }
    this.ended = true;
    if (this.mode === 'collect' || !this.z) {
      // The whole body in one end(), or collected: one-shot compression, without a stream's setup.
      const parts = this.collected;
      if (chunk) parts.push(chunk);
      const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      const callbacks = this.collectedDone;
      this.collected = [];
      this.collectedDone = [];
      compressBody(this.coding, this.settings.level, body, (err, compressed) => {
        for (const cb of callbacks) cb(err);
        if (err) this.res.destroy(err);
        else out.end(compressed);
      });
      return;
    }
    if (chunk) this.z.end(chunk);
    else this.z.end();
  }

  flush(out: BodyOut): void {
    if (this.mode === 'collect' || this.mode === 'stream') {
      // The producer wants its bytes to go out as written.
      this.flushPolicy = 'each-write';
      if (this.mode === 'collect') this.spill(out);
    }
    out.flush();
  }

  private compressor(out: BodyOut): Compressor {
    if (this.z) return this.z;
    const z = createCompressor(this.coding, this.settings.level);
    this.z = z;
    const res = this.res;
    z.on('data', (data: Buffer) => {
      if (!out.write(data)) {
        z.pause();
        out.onDrain(() => z.resume());
      }
    });
    z.on('drain', () => {
      if (!this.producerWaiting) return;
      this.producerWaiting = false;
      res.emit('drain');
    });
    z.once('end', () => out.end());
    z.once('error', (err) => res.destroy(err));
    res.once('close', () => z.destroy());
    return z;
  }

  /** Stops collecting: what was collected goes into a stream compressor, and so will the rest. */
  private spill(out: BodyOut): void {
    const parts = this.collected;
    const callbacks = this.collectedDone;
    this.collected = [];
    this.collectedDone = [];
    this.mode = 'stream';
    if (this.flushPolicy === 'at-end') this.flushPolicy = 'per-burst';
    const z = this.compressor(out);
    parts.forEach((part, i) =>
      z.write(part, i === parts.length - 1 ? () => callbacks.forEach((cb) => cb()) : undefined),
    );
  }

  private scheduleFlush(): void {
    const z = this.z!;
    if (this.flushPolicy === 'at-end') return;
    if (this.flushPolicy === 'each-write') {
      flushCompressor(z, this.coding);
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.ended && !z.destroyed) flushCompressor(z, this.coding);
    });
  }
}
