// One visitor request forwarded to the tunnel's HTTP target over our own HTTP/1.1 connection pool (core/h1,
// which the proxy uses for its upstreams), not http.request. Why: Node's Agent, ClientRequest and
// IncomingMessage were most of the client's CPU for a small request, and every read of the answer was a
// fresh 64 KB buffer; during a download that garbage brought V8's next full collection closer every ~18 MB
// (a third of the client's CPU went to full GCs). Now reads land in the shared READ_BUFFER; a small answer
// is copied once, into the REPLY frame, and a bigger one into reused 64 KB chunks that go back to their
// pool once the link has handed them to the OS.
//
// The exchange: the head (and a small whole body) in one write, a streamed request body after it with
// backpressure; the answer's head and what arrives of its body in the same turn of the event loop cross in
// one REPLY frame (a small answer is one frame each way), the rest streams in DATA frames, the target being
// paused while the stream's window is full. A pooled connection that fails before any byte of the answer
// (the target closed it while idle) is retried once on a new one when the request may run twice (as the
// proxy decides: an idempotent method or an Idempotency-Key) and its body came whole.
import type { OutgoingHttpHeaders } from 'node:http';
import { copyReadPart, type ReadPart } from '../core/h1/buffers.js';
import { ResponseParser, type ResponseEvents, type ResponseHead } from '../core/h1/parser.js';
import type { ConnectionPool, ConnectionUser, UpstreamConnection } from '../core/h1/pool.js';
import {
  endChunkedBody,
  replayable,
  serializeHead,
  writeBodyPart,
  writeWholeRequest,
} from '../core/h1/request.js';
import { errorWire, responseWire } from './headers.js';
import type { Recorder } from './inspector/capture.js';
import type { MuxStream, StreamSink } from './mux-stream.js';

/**
 * A response body up to this size that arrives within one turn of the event loop (a small answer: head and
 * body in one read) crosses whole in the REPLY frame; a bigger or slower one streams in DATA frames.
 */
const INLINE_BYTES = 64 * 1024;
/** Methods whose empty body Node's client announces as `Content-Length: 0` (it sends none for these). */
const NO_BODY_EXPECTED = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

export interface TargetRequest {
  method: string;
  path: string;
  /** Hop-by-hop fields removed and Host set. */
  headers: OutgoingHttpHeaders;
  /** The start of the body, from the OPEN frame; `end`: it is all of it. */
  body: Buffer;
  end: boolean;
}

export interface TargetObserver {
  /** The target's URL, for the 502's detail. */
  readonly url: string;
  readonly rec: Recorder | undefined;
  /** The exchange is over (called once): the status, or undefined; why it failed. */
  readonly report: (status: number | undefined, error?: string) => void;
}

export function forwardToTarget(
  stream: MuxStream,
  pool: ConnectionPool,
  req: TargetRequest,
  observer: TargetObserver,
): void {
  new TargetExchange(stream, pool, req, observer).start(false);
}

class TargetExchange implements ConnectionUser, ResponseEvents, StreamSink {
  private parser: ResponseParser;
  private conn: UpstreamConnection | undefined;
  /** The connection is still ours (not given back or destroyed). */
  private attached = false;
  private chunked = false;
  private requestSent = false;
  /** Request body bytes written while the socket's buffer was full: credited back once it drains. */
  private owed = 0;
  private retried = false;
  private status: number | undefined;
  private wire: unknown;
  private replied = false;
  private complete = false;
  private early: ReadPart[] = [];
  private earlyBytes = 0;
  private headTimer: NodeJS.Immediate | undefined;
  private paused = false;
  private reported = false;

  constructor(
    private readonly stream: MuxStream,
    private readonly pool: ConnectionPool,
    private readonly req: TargetRequest,
    private readonly observer: TargetObserver,
  ) {
    this.parser = new ResponseParser(req.method === 'HEAD', this);
    stream.onClose = this.onStreamClose;
    stream.sink = this;
  }

  /** Sends the request (again, on a new connection, with `fresh`). */
  start(fresh: boolean): void {
    const { method, path, headers, body, end } = this.req;
    // A whole body is announced by its length, as Node's client does.
    if (end && headers['content-length'] === undefined) {
      if (body.length > 0 || !NO_BODY_EXPECTED.has(method)) headers['content-length'] = String(body.length);
    }
    let head;
    try {
      head = serializeHead(method, path, headers, !end, this.pool.keepAlive);
    } catch (err) {
      this.failBeforeAnswer(`the request cannot be sent: ${(err as Error).message}`);
      return;
    }
    this.chunked = head.chunked;
    const conn = (fresh ? undefined : this.pool.take()) ?? this.pool.connect(0, this);
    conn.user = this;
    this.conn = conn;
    this.attached = true;
    const socket = conn.socket;
    if (!end) {
      // (Never a retry: a streamed body cannot be sent again.)
      socket.write(head.text, 'latin1');
      this.deliver(body, false);
      return;
    }
    if (body.length > 0 && !fresh) this.observer.rec?.requestData(body);
    writeWholeRequest(socket, head, body);
    this.requestSent = true;
    if (!fresh) this.stream.consumed(body.length);
  }

  // ---- the request body (StreamSink) ----

  deliver(chunk: Buffer, end: boolean): void {
    // Nothing more comes for a request that was whole; what does (or comes after a failure) is dropped.
    if (!this.attached || this.requestSent) {
      this.stream.consumed(chunk.length);
      return;
    }
    if (chunk.length > 0) this.observer.rec?.requestData(chunk);
    const socket = this.conn!.socket;
    const ok = chunk.length === 0 || writeBodyPart(socket, chunk, this.chunked);
    if (end) {
      if (this.chunked) endChunkedBody(socket);
      this.requestSent = true;
    }
    // Credit goes back as the target takes the bytes, so the window bounds what waits in the socket.
    if (ok) this.stream.consumed(chunk.length);
    else this.owed += chunk.length;
  }

  abandoned(): void {
    // onStreamClose has heard it already.
  }

  resumeWriting(): void {
    this.resume();
  }

  onDrain(): void {
    const owed = this.owed;
    this.owed = 0;
    if (owed > 0) this.stream.consumed(owed);
  }

  // ---- the connection ----

  onData(chunk: Buffer): void {
    try {
      this.parser.execute(chunk);
    } catch (err) {
      this.fail(`malformed answer (${(err as Error).message})`, undefined);
    }
  }

  onEnd(): void {
    try {
      this.parser.finish();
    } catch {
      // 'close' follows and reports it.
    }
  }

  onError(err: NodeJS.ErrnoException): void {
    this.fail(err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message), err.code);
  }

  onClose(): void {
    this.attached = false;
    if (!this.complete) this.fail(this.replied ? 'aborted' : 'socket hang up', 'ECONNRESET');
  }

  // ---- the answer ----

  onHead(head: ResponseHead): void {
    this.status = head.statusCode;
    this.observer.rec?.response(head.statusCode, head.headers);
    this.wire = responseWire(head.statusCode, head.headers);
    // What arrives in this turn of the event loop waits to go with the head.
    this.headTimer = setImmediate(this.sendHead);
  }

  onBody(view: Buffer): void {
    this.observer.rec?.responseData(view);
    const part = copyReadPart(view);
    if (!this.replied) {
      this.early.push(part);
      this.earlyBytes += view.length;
      if (this.earlyBytes >= INLINE_BYTES) this.sendHead();
      return;
    }
    if (!this.stream.write(part.buf, part.release)) this.pause();
  }

  onComplete(): void {
    this.complete = true;
    if (this.attached) {
      this.attached = false;
      // A request still being sent when the answer ended leaves the connection mid-message.
      this.pool.release(this.conn!, this.requestSent && this.pool.keepAlive && this.parser.reusable);
    }
    if (this.replied) this.stream.end();
    else this.reply(true);
  }

  private readonly sendHead = (): void => {
    if (!this.replied) this.reply(false);
  };

  /** The head, with the body that arrived so far (all of it with `end`). */
  private reply(end: boolean): void {
    clearImmediate(this.headTimer);
    this.replied = true;
    const early = this.early;
    this.early = [];
    const first = early.shift();
    this.stream.reply(this.wire, first?.buf, end && early.length === 0, first?.release);
    for (const part of early) this.stream.write(part.buf, part.release);
    if (end && early.length > 0) this.stream.end();
  }

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

  // ---- the outcome ----

  /** The target failed (`why`, for the visitor and the request line; `code`, the socket error's). */
  private fail(why: string, code: string | undefined): void {
    if (this.complete || this.reported) return;
    const conn = this.conn;
    const stale =
      conn?.reused === true &&
      this.parser.bytesSeen === 0 &&
      (code === 'ECONNRESET' || code === 'EPIPE') &&
      this.req.end &&
      replayable(this.req.method, this.req.headers) &&
      !this.retried;
    this.destroyConnection();
    if (this.stream.done) return;
    if (stale) {
      this.retried = true;
      this.parser = new ResponseParser(this.req.method === 'HEAD', this);
      this.start(true);
      return;
    }
    if (!this.replied) {
      clearImmediate(this.headTimer);
      this.failBeforeAnswer(why);
      return;
    }
    this.stream.reset('target-error');
    this.finish(this.status, why);
  }

  /** No answer: a 502 that says why. */
  private failBeforeAnswer(why: string): void {
    this.replied = true;
    this.finish(502, why);
    this.stream.reply(
      errorWire(502, 'target-down', `the tunnel client could not reach ${this.observer.url}: ${why}`),
      undefined,
      true,
    );
  }

  /** Over both ways, or abandoned by the server (the visitor went away): stop talking to the target. */
  private readonly onStreamClose = (): void => {
    const whole = this.requestSent && this.complete;
    if (!whole) this.destroyConnection();
    clearImmediate(this.headTimer);
    this.finish(this.status, whole ? undefined : 'cancelled');
  };

  private finish(status: number | undefined, error?: string): void {
    if (this.reported) return;
    this.reported = true;
    this.observer.report(status, error);
  }

  private destroyConnection(): void {
    if (!this.attached) return;
    this.attached = false;
    this.pool.release(this.conn!, false);
  }
}
