// One request to a plain-HTTP upstream over our own HTTP/1.1 connection pool (instead of http.request: the
// Agent, ClientRequest, IncomingMessage and stream plumbing cost more CPU than everything else a proxied
// request does). The head goes out in one write (with a small body), a streamed body follows with
// backpressure; the response head settles the attempt, and its body is written to the client through
// res.write/res.end (so gzip and log wrappers see it) with backpressure, or the client is cut off if the
// upstream fails mid-body. Errors are reported as forward.ts's AttemptResult, stale pooled connections
// included, so route.ts retries and counts failures the same whatever the client.
//
// A body of known length up to WHOLE_BODY_LIMIT is collected in a reused buffer (buffers.ts) and written with
// one end(), head and body in one write (as nginx buffers a proxied response); longer and unframed bodies
// are streamed, each part copied out of the shared read buffer.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { HttpResponse } from '../../../core/response.js';
import type { RequestContext } from '../../../core/context.js';
import { countRead } from '../../../core/read-gc.js';
import type { AttemptOptions, AttemptResult, BodySource, UpstreamResponse } from '../forward.js';
import {
  copyStreamChunk,
  releaseBodyBuffer,
  releaseStreamChunk,
  takeBodyBuffer,
  WHOLE_BODY_LIMIT,
} from '../../../core/h1/buffers.js';
import {
  ResponseParser,
  type ResponseEvents,
  type ResponseHead,
  type UpgradeHead,
} from '../../../core/h1/parser.js';
import type { ConnectionPool, ConnectionUser, UpstreamConnection } from '../../../core/h1/pool.js';
import {
  endChunkedBody,
  serializeHead,
  writeBodyPart,
  writeWholeRequest,
  type RequestHead,
} from '../../../core/h1/request.js';

/** Body bytes held for a client response not attached yet, before the upstream is paused. */
const QUEUE_HIGH_WATER = 256 * 1024;

/**
 * Sends one request on a pooled (or, with `fresh`, a new) connection. Throws InvalidRequestHeadError,
 * before anything is sent, when a header or the path must not go on the wire.
 */
export function h1Attempt(
  ctx: RequestContext,
  pool: ConnectionPool,
  path: string,
  headers: OutgoingHttpHeaders,
  body: BodySource,
  opts: AttemptOptions,
  fresh: boolean,
): Promise<AttemptResult> {
  const method = ctx.req.method ?? 'GET';
  const head = serializeHead(method, path, headers, body.kind === 'stream', pool.keepAlive);
  return new Promise((resolve) => {
    const exchange = new Exchange(ctx, pool, method === 'HEAD', opts.upgrade, resolve);
    exchange.start(head, body, opts, fresh);
  });
}

class Exchange implements ConnectionUser, ResponseEvents, UpstreamResponse {
  statusCode = 0;
  statusMessage = '';
  headers: IncomingHttpHeaders = {};

  private readonly ctx: RequestContext;
  private readonly pool: ConnectionPool;
  private readonly parser: ResponseParser;
  /** Resolves the attempt; cleared once it has. */
  private settle: ((result: AttemptResult) => void) | undefined;
  private conn: UpstreamConnection | undefined;
  /** The connection is still ours (not yet given back or destroyed). */
  private attached = false;
  private responseTimer: NodeJS.Timeout | undefined;

  // The request body, while it is being sent.
  private body: BodySource = { kind: 'none' };
  /** The body came from a stream: it cannot be sent again, so a failure is never retried at once. */
  private streamed = false;
  private chunked = false;
  private requestSent = false;
  private waitingForUpstreamDrain = false;

  // The response body: queued until the client response is attached, then written as it arrives.
  private out: HttpResponse | undefined;
  private upstreamName = '';
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  /** The whole body's buffer when it is collected (see the top of the file), and the bytes in it. */
  private wholeBuffer: Buffer | undefined;
  private wholeBytes = 0;
  private ended = false;
  private endWritten = false;
  private trailers: IncomingHttpHeaders | undefined;
  private failure: Error | undefined;
  private paused = false;
  private waitingForClientDrain = false;
  private done: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(
    ctx: RequestContext,
    pool: ConnectionPool,
    headRequest: boolean,
    upgradeRequest: boolean,
    settle: (r: AttemptResult) => void,
  ) {
    this.ctx = ctx;
    this.pool = pool;
    this.settle = settle;
    this.parser = new ResponseParser(headRequest, this, upgradeRequest);
  }

  start(head: RequestHead, body: BodySource, opts: AttemptOptions, fresh: boolean): void {
    const res = this.ctx.res;
    if (res.destroyed || this.ctx.req.socket.destroyed) return this.onClientCloseEarly();
    res.on('close', this.onClientCloseEarly);
    const conn = (fresh ? undefined : this.pool.take()) ?? this.pool.connect(opts.dialTimeoutMs, this);
    conn.user = this;
    this.conn = conn;
    this.attached = true;
    if (opts.responseTimeoutMs > 0) {
      this.responseTimer = setTimeout(() => {
        const err: NodeJS.ErrnoException = new Error(`no response within ${opts.responseTimeoutMs}ms`);
        err.code = 'ETIMEDOUT';
        this.settleWith({ kind: 'error', err, timedOut: true, staleSocket: false });
        this.stopReadingBody();
        this.destroyConnection();
      }, opts.responseTimeoutMs);
    }
    this.chunked = head.chunked;
    const socket = conn.socket;
    switch (body.kind) {
      case 'none':
      case 'buffered':
        writeWholeRequest(socket, head, body.kind === 'none' ? EMPTY : body.data);
        this.requestSent = true;
        break;
      case 'stream':
        socket.write(head.text, 'latin1');
        this.body = body;
        this.streamed = true;
        body.consumed = true;
        body.stream.on('data', this.onBodyData);
        body.stream.on('end', this.onBodyEnd);
        body.stream.on('error', this.onBodyError);
        // The request may have been paused explicitly (then 'data' listeners alone do not start it).
        body.stream.resume();
        break;
    }
  }

  // ---- the request body ----

  private readonly onBodyData = (chunk: Buffer) => {
    if (!this.attached || this.body.kind !== 'stream') return;
    countRead(chunk.length);
    if (!writeBodyPart(this.conn!.socket, chunk, this.chunked)) {
      this.waitingForUpstreamDrain = true;
      this.body.stream.pause();
    }
  };

  private readonly onBodyEnd = () => {
    if (!this.attached) return;
    if (this.chunked) endChunkedBody(this.conn!.socket);
    this.requestSent = true;
    this.stopReadingBody();
  };

  /** The body could not be read (over `limits`: a 413 HttpError; the client aborted): the request is void. */
  private readonly onBodyError = (err: Error) => {
    this.stopReadingBody();
    this.fail(err);
    this.destroyConnection();
  };

  onDrain(): void {
    if (this.waitingForUpstreamDrain && this.body.kind === 'stream') {
      this.waitingForUpstreamDrain = false;
      this.body.stream.resume();
    }
  }

  private stopReadingBody(): void {
    if (this.body.kind !== 'stream') return;
    const stream = this.body.stream;
    this.body = { kind: 'none' };
    stream.off('data', this.onBodyData);
    stream.off('end', this.onBodyEnd);
    stream.off('error', this.onBodyError);
    // An error listener stays: a late error of a stream nobody reads must not crash the process.
    stream.on('error', ignore);
    // What the upstream did not take is discarded, so the client connection stays usable.
    if (!stream.readableEnded && !stream.destroyed) stream.resume();
  }

  // ---- socket events ----

  onData(chunk: Buffer): void {
    try {
      this.parser.execute(chunk);
    } catch (err) {
      this.fail(err as Error);
      this.stopReadingBody();
      this.destroyConnection();
      return;
    }
    if (this.out) this.flush();
    else if (this.queuedBytes > QUEUE_HIGH_WATER) this.pause();
  }

  onEnd(): void {
    try {
      this.parser.finish();
    } catch {
      return; // 'close' follows and reports it
    }
    if (this.out) this.flush();
  }

  onError(err: NodeJS.ErrnoException): void {
    this.fail(err);
  }

  onClose(): void {
    this.attached = false;
    this.stopReadingBody();
    if (this.parser.complete) return;
    const err: NodeJS.ErrnoException = new Error(this.settle ? 'socket hang up' : 'aborted');
    err.code = 'ECONNRESET';
    this.fail(err);
  }

  // ---- parser events ----

  onHead(head: ResponseHead): void {
    this.statusCode = head.statusCode;
    this.statusMessage = head.statusMessage;
    this.headers = head.headers;
    const length = this.parser.fixedLength;
    if (length > 0 && length <= WHOLE_BODY_LIMIT) this.wholeBuffer = takeBodyBuffer(length);
    this.settleWith({ kind: 'response', res: this });
  }

  /**
   * The upstream switched protocols: the connection leaves the pool for good and goes to whoever splices it
   * to the client (it is paused until then; `rest` is copied out of the shared read buffer).
   */
  onUpgrade(head: UpgradeHead, rest: Buffer): void {
    const conn = this.conn!;
    this.attached = false;
    this.requestSent = true;
    conn.socket.pause();
    this.settleWith({ kind: 'upgrade', head, conn, rest: Buffer.from(rest) });
  }

  /** `chunk` is a view of the shared read buffer: it is copied. */
  onBody(chunk: Buffer): void {
    if (this.wholeBuffer) {
      this.wholeBytes += chunk.copy(this.wholeBuffer, this.wholeBytes);
      return;
    }
    this.queue.push(copyStreamChunk(chunk));
    this.queuedBytes += chunk.length;
  }

  /** The response is complete: the connection goes back at once (the rest of the body is queued). */
  onComplete(trailers: IncomingHttpHeaders | undefined): void {
    this.ended = true;
    this.trailers = trailers;
    if (!this.attached) return;
    this.attached = false;
    // A request still being sent when the answer ended leaves the connection mid-message: not reusable.
    const reusable = this.requestSent && this.pool.keepAlive && this.parser.reusable;
    this.stopReadingBody();
    this.pool.release(this.conn!, reusable);
  }

  // ---- UpstreamResponse ----

  pipeTo(out: HttpResponse, upstreamName: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out = out;
      this.upstreamName = upstreamName;
      this.done = { resolve, reject };
      if (this.failure) return this.cutClientOff();
      if (out.destroyed) return this.onOutClose();
      out.on('close', this.onOutClose);
      out.on('finish', this.onOutFinish);
      // Server-sent events are useless late: send the head now rather than with the first event.
      const type = this.headers['content-type'];
      if (!this.ended && type !== undefined && type.startsWith('text/event-stream')) out.flushHeaders();
      this.flush();
    });
  }

  abort(): void {
    this.stopReadingBody();
    this.destroyConnection();
  }

  /** Writes the queued body to the client; pauses the upstream while the client cannot take more. */
  private flush(): void {
    const out = this.out!;
    if (this.wholeBuffer) {
      if (this.ended) this.endWhole(out, this.wholeBuffer);
      return;
    }
    const queue = this.queue;
    if (this.ended) {
      if (this.endWritten) return;
      this.endWritten = true;
      const last = queue.pop();
      for (const chunk of queue) writeChunk(out, chunk);
      this.queue = [];
      this.queuedBytes = 0;
      if (this.trailers !== undefined && out.hasHeader('trailer')) out.addTrailers(this.trailers);
      // The last part goes with the end (one write); it is given back when the response has finished.
      if (last === undefined) out.end();
      else out.end(last, () => releaseStreamChunk(last));
      return;
    }
    let ok = true;
    for (const chunk of queue) ok = writeChunk(out, chunk);
    queue.length = 0;
    this.queuedBytes = 0;
    if (ok) this.resume();
    else {
      this.pause();
      if (!this.waitingForClientDrain) {
        this.waitingForClientDrain = true;
        out.once('drain', this.onOutDrain);
      }
    }
  }

  /** Writes a collected body; its buffer is reused once the response has finished with it. */
  private endWhole(out: HttpResponse, buf: Buffer): void {
    if (this.endWritten) return;
    this.endWritten = true;
    const body = buf.subarray(0, this.wholeBytes);
    // A response has handed every byte to its socket when it finishes (the callback); gzip, which wraps
    // end(), has compressed the body by then. A response destroyed first leaves the buffer to the collector.
    out.end(body, (err?: Error | null) => {
      if (!err) releaseBodyBuffer(buf);
    });
  }

  private readonly onOutDrain = () => {
    this.waitingForClientDrain = false;
    this.resume();
  };

  private pause(): void {
    if (this.paused || !this.attached) return;
    this.paused = true;
    this.conn!.socket.pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.attached) this.conn!.socket.resume();
  }

  /** The client response closed: complete, or the client went away (then the upstream is dropped). */
  private readonly onOutClose = () => {
    if (!this.out!.writableFinished) {
      this.stopReadingBody();
      this.destroyConnection();
    }
    this.finishPipe();
  };

  private readonly onOutFinish = () => this.finishPipe();

  private finishPipe(err?: Error): void {
    const done = this.done;
    if (!done) return;
    this.done = undefined;
    const out = this.out!;
    out.off('close', this.onOutClose);
    out.off('finish', this.onOutFinish);
    out.off('drain', this.onOutDrain);
    if (err) done.reject(err);
    else done.resolve();
  }

  /** The upstream failed mid-body: the client must not see a clean end. */
  private cutClientOff(): void {
    this.out!.destroy();
    this.destroyConnection();
    this.finishPipe(
      new Error(`upstream ${this.upstreamName} closed the response early: ${this.failure!.message}`),
    );
  }

  // ---- outcome ----

  private settleWith(result: AttemptResult): void {
    const settle = this.settle;
    if (!settle) return;
    this.settle = undefined;
    clearTimeout(this.responseTimer);
    this.ctx.res.off('close', this.onClientCloseEarly);
    settle(result);
  }

  /** A client that goes away before the answer cancels the upstream request (Go's request context). */
  private readonly onClientCloseEarly = () => {
    if (this.ctx.res.writableFinished) return;
    this.settleWith({ kind: 'client-gone' });
    this.stopReadingBody();
    this.destroyConnection();
  };

  /** The upstream failed: before the head it is the attempt's error, after it the body's. */
  private fail(err: NodeJS.ErrnoException): void {
    if (this.settle) {
      // A pooled connection that failed before any byte of the answer was most likely closed by the
      // upstream while idle: retried at once on a fresh one (unless the body was a stream already sent).
      const staleSocket =
        this.conn?.reused === true &&
        this.parser.bytesSeen === 0 &&
        (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
        !this.streamed;
      this.settleWith({ kind: 'error', err, timedOut: false, staleSocket });
      return;
    }
    if (this.ended || this.failure) return;
    this.failure = err;
    if (this.done) this.cutClientOff();
  }

  private destroyConnection(): void {
    if (!this.attached) return;
    this.attached = false;
    this.pool.release(this.conn!, false);
  }
}

function ignore(): void {}

const EMPTY = Buffer.alloc(0);

/** Writes a streamed part; its reused buffer goes back once the socket has it (not after a failed write). */
function writeChunk(out: HttpResponse, chunk: Buffer): boolean {
  return out.write(chunk, (err) => {
    if (!err) releaseStreamChunk(chunk);
  });
}
