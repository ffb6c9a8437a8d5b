// One request/response over a pooled FastCGI connection: params and the streamed body out, STDOUT streamed
// to the client with backpressure both ways, STDERR to the process log, timeouts, and the rule for
// failures: an HttpError while nothing was written, a destroyed client socket once headers are out.
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import { applyCgiHead, findHeaderEnd, MAX_HEADER_BYTES, parseCgiHead } from './cgi-response.js';
import type { FcgiConnection } from './connection.js';
import type { FcgiPool } from './pool.js';
import { ProtocolStatus } from './protocol.js';

export interface ExchangeTimeouts {
  /** Longest wait for the next bytes of the answer (0 = none). */
  readMs: number;
  /** Longest wait for php-fpm to accept more of the request (0 = none). */
  sendMs: number;
}

/** How the exchange ended, for the pool: may the connection carry another request? */
interface Outcome {
  reusable: boolean;
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
  const res = ctx.res;
  return new Promise<void>((resolve, reject) => {
    let headBuf: Buffer[] | undefined = [];
    let headLen = 0;
    let stdinDone = body === undefined;
    let finished = false;
    let readTimer: NodeJS.Timeout | undefined;
    let sendTimer: NodeJS.Timeout | undefined;
    let clientPaused = false;
    let stderrPartial = '';
    /** Body bytes of the current read, written when it has been parsed (see onReadEnd). */
    let held: Buffer[] = [];
    let heldBytes = 0;

    const logStderr = (text: string, flush: boolean) => {
      const lines = (stderrPartial + text).split('\n');
      stderrPartial = flush ? '' : lines.pop()!;
      if (stderrPartial.length > MAX_STDERR_LINE) {
        lines.push(stderrPartial);
        stderrPartial = '';
      }
      for (const line of lines) {
        const trimmed = line.trimEnd();
        if (trimmed) ctx.log.error({ fastcgi: upstream, uri: ctx.originalUri }, `FastCGI stderr: ${trimmed}`);
      }
    };

    const cleanup = () => {
      clearTimeout(readTimer);
      clearTimeout(sendTimer);
      res.removeListener('close', onClientClose);
      res.removeListener('drain', onClientDrain);
      conn.socket.removeListener('drain', onUpstreamDrain);
      if (body) {
        body.removeListener('data', onBodyData);
        body.removeListener('end', onBodyEnd);
        body.removeListener('error', onBodyError);
        // What the application did not read is discarded, so the client connection stays usable.
        if (!body.readableEnded) body.resume();
      }
    };

    const finish = (outcome: Outcome) => {
      if (finished) return;
      finished = true;
      if (stderrPartial) logStderr('', true);
      cleanup();
      pool.release(conn, outcome.reusable);
      resolve();
    };

    const fail = (err: ExchangeError | HttpError) => {
      if (finished) return;
      finished = true;
      if (stderrPartial) logStderr('', true);
      cleanup();
      pool.release(conn, false);
      // The application's head was taken: what it sent goes out, then the cut below.
      if (headBuf === undefined && !res.destroyed) flushHeld();
      if (!res.headersSent) {
        reject(err instanceof HttpError ? err : new HttpError(err.status, err.message, { cause: err }));
        return;
      }
      // Headers (and maybe part of the body) are out: a truncated body must not look complete.
      ctx.log.warn(
        { fastcgi: upstream, uri: ctx.originalUri, err: err.message },
        'FastCGI response cut short',
      );
      res.destroy();
      resolve();
    };

    const armRead = () => {
      if (timeouts.readMs <= 0) return;
      if (readTimer) readTimer.refresh();
      else readTimer = setTimeout(onReadTimeout, timeouts.readMs);
    };
    function onReadTimeout() {
      // Waiting on our own client is not the application being slow.
      if (clientPaused) readTimer!.refresh();
      else fail(new ExchangeError(504, `FastCGI ${upstream} read timeout`));
    }

    const writeBody = (data: Buffer) => {
      if (res.write(data) || clientPaused) return;
      clientPaused = true;
      conn.pause();
      res.once('drain', onClientDrain);
    };
    function onClientDrain() {
      clientPaused = false;
      conn.resume();
      armRead();
    }

    /** Writes the held body bytes; once the head is parsed, the headers are committed at least. */
    const flushHeld = () => {
      if (held.length === 0) {
        if (headBuf === undefined && !res.headersSent) res.writeHead(res.statusCode);
        return;
      }
      const pieces = held;
      held = [];
      heldBytes = 0;
      for (const piece of pieces) writeBody(piece);
    };

    const onStdout = (data: Buffer) => {
      armRead();
      if (headBuf === undefined) {
        held.push(data);
        heldBytes += data.length;
        return;
      }
      headBuf.push(data);
      headLen += data.length;
      // Record contents are views into the chunks read, which are never reused: no copy needed.
      const joined = headBuf.length === 1 ? headBuf[0] : Buffer.concat(headBuf, headLen);
      headBuf = [joined];
      const end = findHeaderEnd(joined);
      if (end < 0) {
        if (headLen > MAX_HEADER_BYTES) fail(new ExchangeError(502, 'FastCGI response headers too large'));
        return;
      }
      let head;
      try {
        head = parseCgiHead(joined.toString('latin1', 0, end));
      } catch (err) {
        fail(new ExchangeError(502, (err as Error).message));
        return;
      }
      headBuf = undefined;
      applyCgiHead(res, head);
      if (ctx.req.method !== 'HEAD' && end < joined.length) {
        held.push(joined.subarray(end));
        heldBytes += joined.length - end;
      }
    };

    const onEnd = (_appStatus: number, protocolStatus: ProtocolStatus) => {
      if (protocolStatus !== ProtocolStatus.RequestComplete) {
        const status = protocolStatus === ProtocolStatus.Overloaded ? 503 : 502;
        fail(new ExchangeError(status, `FastCGI ${upstream} refused the request (${protocolStatus})`));
        return;
      }
      if (headBuf !== undefined) {
        // The answer ended inside its header block; a script that printed nothing still gets its 200.
        if (headLen > 0) {
          fail(new ExchangeError(502, 'FastCGI response ended inside its headers'));
          return;
        }
        headBuf = undefined;
        res.statusCode = 200;
      }
      const reusable = stdinDone;
      let last: Buffer | undefined;
      if (!res.headersSent && held.length > 0 && hasBody(ctx.req.method, res.statusCode)) {
        // The whole answer came in this read: one write with its length, rather than a chunked body.
        last = held.length === 1 ? held[0] : Buffer.concat(held, heldBytes);
        held = [];
        heldBytes = 0;
        if (!res.hasHeader('content-length')) res.setHeader('Content-Length', last.length);
      }
      flushHeld();
      res.end(last);
      // The application is done: its connection (and php-fpm worker) goes to the next request now, not
      // once our client has taken the last bytes.
      finish({ reusable });
    };

    function onClientClose() {
      if (!res.writableFinished) fail(new ExchangeError(499, 'client closed the connection'));
    }
    function onUpstreamDrain() {
      clearTimeout(sendTimer);
      body?.resume();
    }
    function onBodyData(chunk: Buffer) {
      if (conn.writeStdin(chunk)) return;
      body!.pause();
      if (timeouts.sendMs > 0) {
        clearTimeout(sendTimer);
        sendTimer = setTimeout(
          () => fail(new ExchangeError(504, `FastCGI ${upstream} send timeout`)),
          timeouts.sendMs,
        );
      }
      conn.socket.once('drain', onUpstreamDrain);
    }
    function onBodyEnd() {
      conn.endStdin();
      stdinDone = true;
    }
    function onBodyError(err: Error) {
      fail(
        err instanceof HttpError ? err : new ExchangeError(400, `reading the request body: ${err.message}`),
      );
    }

    res.on('close', onClientClose);
    conn.begin(head, {
      onStdout,
      onReadEnd: flushHeld,
      onStderr: (data) => logStderr(data.toString('utf8'), false),
      onEnd,
      onError: (err) => fail(new ExchangeError(502, `FastCGI ${upstream}: ${err.message}`)),
    });
    armRead();
    if (body) {
      body.on('data', onBodyData);
      body.on('end', onBodyEnd);
      body.on('error', onBodyError);
    }
  });
}
