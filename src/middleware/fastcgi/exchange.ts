// One request/response over a pooled FastCGI connection: params and the streamed body out, STDOUT streamed
// to the client with backpressure both ways, STDERR to the process log, timeouts, and the rule for
// failures: an HttpError while nothing was written, a destroyed client socket once headers are out.
//
// Every request runs this, so it is one object whose methods are the connection's handlers, rather than a
// dozen closures made per request; the read deadline is the connection's own timer, re-armed, not a new one.
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import { countRead } from '../../core/read-gc.js';
import { applyCgiHead, findHeaderEnd, MAX_HEADER_BYTES, parseCgiHead } from './cgi-response.js';
import type { ExchangeHandlers, FcgiConnection } from './connection.js';
import type { FcgiPool } from './pool.js';
import { ProtocolStatus } from './protocol.js';

export interface ExchangeTimeouts {
  /** Longest wait for the next bytes of the answer (0 = none). */
  readMs: number;
  /** Longest wait for php-fpm to accept more of the request (0 = none). */
  sendMs: number;
}

/** May a response to this request with this status have a body (RFC 9110: not HEAD, 1xx, 204, 304)? */
function hasBody(method: string | undefined, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304;
}

/** Error with the status to answer when nothing was written yet. */
class ExchangeError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const MAX_STDERR_LINE = 8192;

interface BodyListeners {
  data: (chunk: Buffer) => void;
  end: () => void;
  error: (err: Error) => void;
  /** php-fpm took what was written: the body may flow again. */
  drain: () => void;
}

/**
 * A whole answer up to this size goes out as a latin1 string (its bytes unchanged): Node then sends the
 * response head and body in one write, where a Buffer body costs a second chunk and a writev.
 */
const ONE_WRITE_MAX = 16 * 1024;

/**
 * Runs the exchange on `conn`: `head` is the request's start (encodeRequest(), with the end of STDIN when
 * there is no body). Resolves when the response is complete (or the client went away and the
 * socket was cut); rejects with HttpError when nothing was written yet.
 */
export function exchange(
  ctx: RequestContext,
  conn: FcgiConnection,
  pool: FcgiPool,
  head: Buffer,
  body: Readable | undefined,
  timeouts: ExchangeTimeouts,
  upstream: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    new Exchange(ctx, conn, pool, body, timeouts, upstream, resolve, reject).start(head);
  });
}

class Exchange implements ExchangeHandlers {
  /** STDOUT bytes while the CGI header block is incomplete; undefined once it has been parsed. */
  private headBuf: Buffer[] | undefined = [];
  private headLen = 0;
  private stdinDone: boolean;
  private finished = false;
  private sendTimer: NodeJS.Timeout | undefined;
  private clientPaused = false;
  private stderrPartial = '';
  /** Body bytes of the current read, written when it has been parsed (see onReadEnd). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private listeners: BodyListeners | undefined;

  constructor(
    private readonly ctx: RequestContext,
    private readonly conn: FcgiConnection,
    private readonly pool: FcgiPool,
    private readonly body: Readable | undefined,
    private readonly timeouts: ExchangeTimeouts,
    private readonly upstream: string,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.stdinDone = body === undefined;
  }

  start(head: Buffer): void {
    this.ctx.res.on('close', this.onClientClose);
    this.conn.begin(head, this);
    this.armRead();
    const body = this.body;
    if (body) {
      const l = (this.listeners = this.bodyListeners(body));
      body.on('data', l.data);
      body.on('end', l.end);
      body.on('error', l.error);
    }
  }

  // --- the connection's handlers

  onStdout(data: Buffer): void {
    this.armRead();
    const headBuf = this.headBuf;
    if (headBuf === undefined) {
      this.held.push(data);
      this.heldBytes += data.length;
      return;
    }
    this.headLen += data.length;
    // Record contents are views into the chunks read, which are never reused: no copy needed.
    let joined = data;
    if (headBuf.length > 0) {
      headBuf.push(data);
      joined = Buffer.concat(headBuf, this.headLen);
      headBuf.length = 0;
    }
    const end = findHeaderEnd(joined);
    if (end < 0) {
      if (this.headLen > MAX_HEADER_BYTES)
        this.fail(new ExchangeError(502, 'FastCGI response headers too large'));
      else headBuf.push(joined);
      return;
    }
    let head;
    try {
      head = parseCgiHead(joined.toString('latin1', 0, end));
    } catch (err) {
      this.fail(new ExchangeError(502, (err as Error).message));
      return;
    }
    this.headBuf = undefined;
    applyCgiHead(this.ctx.res, head);
    if (this.ctx.req.method !== 'HEAD' && end < joined.length) {
      this.held.push(joined.subarray(end));
      this.heldBytes += joined.length - end;
    }
  }

  onReadEnd(): void {
    this.flushHeld();
  }

  onStderr(data: Buffer): void {
    this.logStderr(data.toString('utf8'), false);
  }

  onEnd(_appStatus: number, protocolStatus: ProtocolStatus): void {
    const res = this.ctx.res;
    if (protocolStatus !== ProtocolStatus.RequestComplete) {
      const status = protocolStatus === ProtocolStatus.Overloaded ? 503 : 502;
      this.fail(
        new ExchangeError(status, `FastCGI ${this.upstream} refused the request (${protocolStatus})`),
      );
      return;
    }
    if (this.headBuf !== undefined) {
      // The answer ended inside its header block; a script that printed nothing still gets its 200.
      if (this.headLen > 0) {
        this.fail(new ExchangeError(502, 'FastCGI response ended inside its headers'));
        return;
      }
      this.headBuf = undefined;
      res.statusCode = 200;
    }
    const reusable = this.stdinDone;
    let last: Buffer | undefined;
    if (!res.headersSent && this.held.length > 0 && hasBody(this.ctx.req.method, res.statusCode)) {
      // The whole answer came in this read: one write with its length, rather than a chunked body.
      const held = this.held;
      last = held.length === 1 ? held[0] : Buffer.concat(held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
      if (!res.hasHeader('content-length')) res.setHeader('Content-Length', last.length);
    }
    this.flushHeld();
    if (last !== undefined && last.length <= ONE_WRITE_MAX) res.end(last.toString('latin1'), 'latin1');
    else res.end(last);
    // The application is done: its connection (and php-fpm worker) goes to the next request now, not
    // once our client has taken the last bytes.
    this.finish(reusable);
  }

  onError(err: Error): void {
    this.fail(new ExchangeError(502, `FastCGI ${this.upstream}: ${err.message}`));
  }

  onReadTimeout(): void {
    // Waiting on our own client is not the application being slow.
    if (this.clientPaused) this.armRead();
    else this.fail(new ExchangeError(504, `FastCGI ${this.upstream} read timeout`));
  }

  // --- events of the client, the request body and the upstream socket (listeners need their own `this`)

  private readonly onClientClose = (): void => {
    if (!this.ctx.res.writableFinished) this.fail(new ExchangeError(499, 'client closed the connection'));
  };

  /** Made when the client first pushes back (most never do). */
  private onClientDrain: (() => void) | undefined;

  /** The request body's listeners, made only for a request that has one. */
  private bodyListeners(body: Readable): BodyListeners {
    const drain = () => {
      clearTimeout(this.sendTimer);
      body.resume();
    };
    return {
      drain,
      data: (chunk: Buffer) => {
        countRead(chunk.length);
        if (this.conn.writeStdin(chunk)) return;
        body.pause();
        const sendMs = this.timeouts.sendMs;
        if (sendMs > 0) {
          clearTimeout(this.sendTimer);
          this.sendTimer = setTimeout(
            () => this.fail(new ExchangeError(504, `FastCGI ${this.upstream} send timeout`)),
            sendMs,
          );
        }
        this.conn.socket.once('drain', drain);
      },
      end: () => {
        this.conn.endStdin();
        this.stdinDone = true;
      },
      error: (err: Error) => {
        this.fail(
          err instanceof HttpError ? err : new ExchangeError(400, `reading the request body: ${err.message}`),
        );
      },
    };
  }

  // --- the rest

  private armRead(): void {
    if (this.timeouts.readMs > 0) this.conn.armRead(this.timeouts.readMs);
  }

  private writeBody(data: Buffer): void {
    const res = this.ctx.res;
    if (res.write(data) || this.clientPaused) return;
    this.clientPaused = true;
    this.conn.pause();
    this.onClientDrain ??= () => {
      this.clientPaused = false;
      this.conn.resume();
      this.armRead();
    };
    res.once('drain', this.onClientDrain);
  }

  /** Writes the held body bytes; once the head is parsed, the headers are committed at least. */
  private flushHeld(): void {
    if (this.held.length === 0) {
      const res = this.ctx.res;
      if (this.headBuf === undefined && !res.headersSent) res.writeHead(res.statusCode);
      return;
    }
    const pieces = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const piece of pieces) this.writeBody(piece);
  }

  private logStderr(text: string, flush: boolean): void {
    const lines = (this.stderrPartial + text).split('\n');
    this.stderrPartial = flush ? '' : lines.pop()!;
    if (this.stderrPartial.length > MAX_STDERR_LINE) {
      lines.push(this.stderrPartial);
      this.stderrPartial = '';
    }
    for (const line of lines) {
      const trimmed = line.trimEnd();
      if (trimmed)
        this.ctx.log.error(
          { fastcgi: this.upstream, uri: this.ctx.originalUri },
          `FastCGI stderr: ${trimmed}`,
        );
    }
  }

  private cleanup(): void {
    clearTimeout(this.sendTimer);
    const res = this.ctx.res;
    res.removeListener('close', this.onClientClose);
    if (this.onClientDrain) res.removeListener('drain', this.onClientDrain);
    const body = this.body;
    const l = this.listeners;
    if (body && l) {
      this.conn.socket.removeListener('drain', l.drain);
      body.removeListener('data', l.data);
      body.removeListener('end', l.end);
      body.removeListener('error', l.error);
      // What the application did not read is discarded, so the client connection stays usable.
      if (!body.readableEnded) body.resume();
    }
  }

  private finish(reusable: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stderrPartial) this.logStderr('', true);
    this.cleanup();
    this.pool.release(this.conn, reusable);
    this.resolve();
  }

  private fail(err: ExchangeError | HttpError): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stderrPartial) this.logStderr('', true);
    this.cleanup();
    this.pool.release(this.conn, false);
    const res = this.ctx.res;
    // The application's head was taken: what it sent goes out, then the cut below.
    if (this.headBuf === undefined && !res.destroyed) this.flushHeld();
    if (!res.headersSent) {
      this.reject(err instanceof HttpError ? err : new HttpError(err.status, err.message, { cause: err }));
      return;
    }
    // Headers (and maybe part of the body) are out: a truncated body must not look complete.
    this.ctx.log.warn(
      { fastcgi: this.upstream, uri: this.ctx.originalUri, err: err.message },
      'FastCGI response cut short',
    );
    res.destroy();
    this.resolve();
  }
}
