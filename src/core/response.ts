// The one way to wrap a response (Caddy's ResponseWriterWrapper): a directive adds a ResponseFilter, which
// sees the header moment (status and headers, just before they go out, whoever writes them) and/or the body
// on its way out. Filters stack in the chain's order: one added by an inner middleware sits above the ones
// added by outer middleware, so the producer's bytes pass through the innermost filter first and the
// outermost last, as through Caddy's nested writers (`internal` inside `gzip` inside `log`).
//
// Our servers make their responses as HookedResponse (HTTP/1.1) or HookedHttp2Response (HTTP/2), whose
// writeHead, write, end and flushHeaders run the filters. Every path to the wire goes through them: an
// explicit writeHead, the implicit head of the first write() or end(), flushHeaders. Arguments are normalised
// once (strings become Buffers, callbacks are separated), so a filter sees Buffers only.
//
// The response also counts the body bytes that reach the wire (after every filter: compressed bytes under
// gzip), for `{size}` and metrics. The state lives in fields of our response classes: a per-response closure
// or property added after construction made V8 promote request garbage under load (measured: gzip on a
// cached page went from ~33k to ~13k req/s with one worker).
import { ServerResponse } from './node-http.js';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Http2ServerResponse } from 'node:http2';
import {
  HOLD,
  type BodyOut,
  type HeadInfo,
  type HttpResponse,
  type ResponseFilter,
  type WriteDone,
} from './response-types.js';

export { HOLD, type BodyOut, type HeadInfo, type HttpResponse, type ResponseFilter, type WriteDone };

/** A filter's place in a response's stack. */
interface Layer {
  readonly filter: ResponseFilter;
  /** What the filter writes to: the next body filter down, or the wire. */
  readonly out: BodyOut;
}

/** The per-response state, fields of our response classes. */
interface Hooked {
  /** Filters, the first added (outermost) first; undefined until one is added. */
  ncLayers: Layer[] | undefined;
  /** The body filter the producer writes to (the innermost one), or the wire. */
  ncTop: BodyOut | undefined;
  /** The head went out (through every filter). */
  ncHeadSent: boolean;
  /** A filter holds the response (HOLD). */
  ncHeld: ResponseFilter | undefined;
  /** end() has been called and the filters are finishing the body. */
  ncEnding: boolean;
  /** Body bytes handed to the wire. */
  ncBytes: number;
}

type HookedResponseLike = (HookedResponse | HookedHttp2Response) & Hooked;

interface BaseMethods {
  writeHead: (...args: unknown[]) => unknown;
  write: (...args: unknown[]) => boolean;
  end: (...args: unknown[]) => unknown;
  flushHeaders: () => void;
}

/* eslint-disable @typescript-eslint/unbound-method -- the originals are called with Reflect.apply */
const H1: BaseMethods = {
  writeHead: ServerResponse.prototype.writeHead as BaseMethods['writeHead'],
  write: ServerResponse.prototype.write as BaseMethods['write'],
  end: ServerResponse.prototype.end as BaseMethods['end'],
  flushHeaders: ServerResponse.prototype.flushHeaders,
};
const H2: BaseMethods = {
  writeHead: Http2ServerResponse.prototype.writeHead as BaseMethods['writeHead'],
  write: Http2ServerResponse.prototype.write as BaseMethods['write'],
  end: Http2ServerResponse.prototype.end as BaseMethods['end'],
  flushHeaders: (Http2ServerResponse.prototype as unknown as { flushHeaders: () => void }).flushHeaders,
};
/* eslint-enable @typescript-eslint/unbound-method */

/** The response class of nodecaddy's HTTP/1.1 servers (`http.createServer({ ServerResponse: HookedResponse })`). */
export class HookedResponse<Request extends IncomingMessage = IncomingMessage>
  extends ServerResponse<Request>
  implements Hooked
{
  ncLayers: Layer[] | undefined = undefined;
  ncTop: BodyOut | undefined = undefined;
  ncHeadSent = false;
  ncHeld: ResponseFilter | undefined = undefined;
  ncEnding = false;
  ncBytes = 0;
}

/** The response class of nodecaddy's HTTP/2 servers (`Http2ServerResponse` option of createSecureServer). */
export class HookedHttp2Response extends Http2ServerResponse implements Hooked, HttpResponse {
  /** Node has it (as ServerResponse does); @types/node for Node 20 does not declare it. */
  declare flushHeaders: () => void;
  ncLayers: Layer[] | undefined = undefined;
  ncTop: BodyOut | undefined = undefined;
  ncHeadSent = false;
  ncHeld: ResponseFilter | undefined = undefined;
  ncEnding = false;
  ncBytes = 0;
}

function install(proto: object, base: BaseMethods): void {
  Object.assign(proto, {
    writeHead: makeWriteHead(base),
    write: makeWrite(base),
    end: makeEnd(base),
    flushHeaders: makeFlushHeaders(base),
  });
}
install(HookedResponse.prototype, H1);
install(HookedHttp2Response.prototype, H2);

function isHooked(res: HttpResponse): res is HookedResponse | HookedHttp2Response {
  return res instanceof HookedResponse || res instanceof HookedHttp2Response;
}

function baseOf(res: HookedResponseLike): BaseMethods {
  return res instanceof HookedHttp2Response ? H2 : H1;
}

/** Adds a filter above those already there. Throws for a response our servers did not make. */
export function addResponseFilter(res: HttpResponse, filter: ResponseFilter): void {
  if (!isHooked(res)) throw new TypeError('response filters need a response made by a nodecaddy server');
  const layers = (res.ncLayers ??= []);
  const below = res.ncTop ?? wireOut(res);
  const out = filter.write || filter.end || filter.flush ? filterOut(filter, below) : below;
  layers.push({ filter, out: below });
  res.ncTop = out;
}

/**
 * After a filter held a response: forgets the held attempt so the request can be served again on the same
 * response. Filters added above the holding one (by middleware inside it) go with the attempt.
 */
export function releaseHeld(res: HttpResponse, holder: ResponseFilter): void {
  if (!isHooked(res) || !res.ncLayers) return;
  const i = res.ncLayers.findIndex((l) => l.filter === holder);
  if (i < 0) return;
  res.ncLayers.length = i + 1;
  res.ncTop =
    holder.write || holder.end || holder.flush ? filterOut(holder, res.ncLayers[i].out) : res.ncLayers[i].out;
  res.ncHeld = undefined;
  res.ncEnding = false;
}

/** Body bytes that reached the wire so far (0 for HEAD), for `{size}` and metrics. */
export function bodyBytesSent(res: HttpResponse): number {
  return isHooked(res) ? res.ncBytes : 0;
}

/** Whether the transport below the response is full (a 'drain' is due). */
export function transportFull(res: HttpResponse): boolean {
  if (res instanceof Http2ServerResponse) return res.stream.writableNeedDrain;
  return (res as InstanceType<typeof ServerResponse>).writableNeedDrain;
}

function filterOut(filter: ResponseFilter, below: BodyOut): BodyOut {
  return {
    write: (chunk, done) => (filter.write ? filter.write(chunk, done, below) : below.write(chunk, done)),
    end: (chunk) => (filter.end ? filter.end(chunk, below) : below.end(chunk)),
    flush: () => (filter.flush ? filter.flush(below) : below.flush()),
    onDrain: (fn) => below.onDrain(fn),
  };
}

/** The bottom of every stack: Node's own methods, counting body bytes. */
function wireOut(res: HookedResponseLike): BodyOut {
  const base = baseOf(res);
  const counts = res.req.method !== 'HEAD';
  return {
    write(chunk, done) {
      if (counts) res.ncBytes += chunk.length;
      return Reflect.apply(base.write, res, [chunk, done]);
    },
    end(chunk) {
      if (counts && chunk) res.ncBytes += chunk.length;
      endWith(base, res, chunk);
    },
    flush() {
      Reflect.apply(base.flushHeaders, res, []);
    },
    onDrain(fn) {
      const check = () => {
        // Filters emit 'drain' for their producers too: wait until the wire itself has room.
        if (transportFull(res) && !res.destroyed) res.once('drain', check);
        else fn();
      };
      res.once('drain', check);
    },
  };
}

function makeWriteHead(base: BaseMethods) {
  return function writeHead(this: HookedResponseLike, ...args: unknown[]): unknown {
    // HTTP/2 heads always pass runHead: it drops the connection-specific headers Node would throw on.
    if ((this.ncLayers === undefined && base !== H2) || this.ncHeadSent)
      return Reflect.apply(base.writeHead, this, args);
    runHead(this, args, false);
    return this;
  };
}

/**
 * Connection-specific fields have no meaning in HTTP/2 (RFC 9113 §8.2.2) and Node throws on them
 * (ERR_HTTP2_INVALID_CONNECTION_HEADERS): a proxied or FastCGI answer may well carry them.
 */
export const H2_FORBIDDEN: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
];

function dropConnectionHeaders(res: HttpResponse): void {
  for (const name of H2_FORBIDDEN) if (res.hasHeader(name)) res.removeHeader(name);
  const te = res.getHeader('te');
  if (te !== undefined && String(te).toLowerCase() !== 'trailers') res.removeHeader('te');
}

/**
 * Takes writeHead's arguments into the response (headers into setHeader, so filters see every header),
 * runs the head hooks from the innermost filter out, then sends the head unless a filter holds it.
 */
function runHead(res: HookedResponseLike, args: readonly unknown[], emptyBody: boolean): void {
  const [status, reasonOrHeaders, maybeHeaders] = args;
  const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : undefined;
  const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
  if (headers) moveIntoSetHeader(res, headers as OutgoingHttpHeaders | (string | string[])[]);
  if (typeof status === 'number') res.statusCode = status;
  if (reason !== undefined) res.statusMessage = reason;
  if (res.ncHeld) return;
  const layers = res.ncLayers ?? [];
  const info: HeadInfo = { emptyBody };
  for (let i = layers.length - 1; i >= 0; i--) {
    const filter = layers[i].filter;
    if (filter.head?.(res, info) === HOLD) {
      res.ncHeld = filter;
      return;
    }
  }
  res.ncHeadSent = true;
  const h2 = res instanceof HookedHttp2Response;
  if (h2) dropConnectionHeaders(res);
  // HTTP/2 has no reason phrase (Node warns when one is given).
  const message = h2 ? undefined : res.statusMessage || undefined;
  Reflect.apply(
    baseOf(res).writeHead,
    res,
    message === undefined ? [res.statusCode] : [res.statusCode, message],
  );
}

/** Runs the head moment now if nobody has (the implicit head of the first write or end). */
function ensureHead(res: HookedResponseLike, emptyBody: boolean): void {
  if (!res.ncHeadSent && !res.ncHeld) runHead(res, [res.statusCode], emptyBody);
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (typeof chunk === 'string')
    return Buffer.from(chunk, (encoding as BufferEncoding | undefined) ?? 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  const view = chunk as Uint8Array;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

function makeWrite(base: BaseMethods) {
  return function write(
    this: HookedResponseLike,
    chunk: unknown,
    encOrDone?: unknown,
    maybeDone?: unknown,
  ): boolean {
    const done = (typeof encOrDone === 'function' ? encOrDone : maybeDone) as WriteDone | undefined;
    const encoding = typeof encOrDone === 'function' ? undefined : encOrDone;
    const top = this.ncTop;
    if (top === undefined) {
      if (this.req.method !== 'HEAD' && chunk !== undefined && chunk !== null)
        this.ncBytes +=
          typeof chunk === 'string'
            ? Buffer.byteLength(chunk, encoding as BufferEncoding)
            : (chunk as Uint8Array).byteLength;
      return Reflect.apply(base.write, this, [chunk, encoding, done]);
    }
    ensureHead(this, false);
    if (chunk === undefined || chunk === null) return true;
    return top.write(toBuffer(chunk, encoding), done);
  };
}

function makeEnd(base: BaseMethods) {
  return function end(this: HookedResponseLike, ...args: unknown[]): unknown {
    let [chunk, encoding, done] = args;
    if (typeof chunk === 'function') [chunk, encoding, done] = [undefined, undefined, chunk];
    else if (typeof encoding === 'function') [encoding, done] = [undefined, encoding];
    const top = this.ncTop;
    if (top === undefined) {
      if (this.writableEnded) return Reflect.apply(base.end, this, args);
      if (typeof chunk === 'string' && base === H1) {
        // Node sends a string body with the head as one string in one write: no Buffer in between.
        if (this.req.method !== 'HEAD') this.ncBytes += Buffer.byteLength(chunk, encoding as BufferEncoding);
        Reflect.apply(base.end, this, done === undefined ? [chunk, encoding] : [chunk, encoding, done]);
        return this;
      }
      const body = chunk === undefined || chunk === null ? undefined : toBuffer(chunk, encoding);
      if (this.req.method !== 'HEAD' && body) this.ncBytes += body.length;
      endWith(base, this, body, done as WriteDone | undefined);
      return this;
    }
    if (this.ncEnding) return this;
    this.ncEnding = true;
    const body = chunk === undefined || chunk === null ? undefined : toBuffer(chunk, encoding);
    ensureHead(this, body === undefined || body.length === 0);
    // Node calls end's callback on 'finish': after every filter has written its last bytes.
    if (typeof done === 'function') this.once('finish', done as () => void);
    top.end(body);
    return this;
  };
}

/**
 * Node's end, with a last chunk. Http2ServerResponse.end(chunk) writes the chunk through this.write (which
 * would run our filters a second time), so there the chunk goes through the base write first.
 */
function endWith(
  base: BaseMethods,
  res: HookedResponseLike,
  chunk: Buffer | undefined,
  done?: WriteDone,
): void {
  if (base === H2 && chunk) {
    Reflect.apply(base.write, res, [chunk]);
    Reflect.apply(base.end, res, done ? [done] : []);
  } else Reflect.apply(base.end, res, chunk ? (done ? [chunk, done] : [chunk]) : done ? [done] : []);
}

function makeFlushHeaders(base: BaseMethods) {
  return function flushHeaders(this: HookedResponseLike): void {
    const top = this.ncTop;
    if (top === undefined) {
      Reflect.apply(base.flushHeaders, this, []);
      return;
    }
    ensureHead(this, false);
    if (!this.ncHeld) top.flush();
  };
}

function moveIntoSetHeader(res: HttpResponse, headers: OutgoingHttpHeaders | (string | string[])[]): void {
  if (Array.isArray(headers)) {
    // Flat [name, value, name, value, …] or [[name, value], …] as Node accepts.
    const flat = (headers.length > 0 && Array.isArray(headers[0]) ? headers.flat() : headers) as string[];
    for (let i = 0; i + 1 < flat.length; i += 2) appendHeader(res, flat[i], flat[i + 1]);
    return;
  }
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) res.setHeader(name, value);
  }
}

function appendHeader(res: HttpResponse, name: string, value: string | string[]): void {
  const prev = res.getHeader(name);
  if (prev === undefined) res.setHeader(name, value);
  else
    res.setHeader(name, [
      ...(Array.isArray(prev) ? prev : [String(prev)]),
      ...(Array.isArray(value) ? value : [value]),
    ]);
}
