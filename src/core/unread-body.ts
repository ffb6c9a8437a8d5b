// A request body that nobody reads: after its response, read at most a little of it, then close.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { HttpResponse } from './response.js';

/** Does the request declare a body (a length above zero, or a transfer coding)? */
export function declaresBody(h: IncomingHttpHeaders): boolean {
  return (
    (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined
  );
}

/** What is still read of a body nobody read, once its response is complete, before the connection is cut. */
export const UNREAD_BODY_BYTES = 64 * 1024;
const UNREAD_BODY_MS = 5000;

/**
 * True when the request body has not been read by anyone and has not fully arrived. (An HTTP/2 stream's body
 * ends with its stream: Node resets a stream whose response ended before its request did.)
 */
function bodyLeftUnread(req: IncomingMessage): boolean {
  return (
    req.httpVersionMajor < 2 &&
    !req.complete &&
    !req.readableDidRead &&
    req.readableFlowing === null &&
    !req.destroyed
  );
}

/**
 * An error answered while a large request body (declared over UNREAD_BODY_BYTES, or chunked) is still on its
 * way closes the connection after the response (`Connection: close`): nobody will read that body, and the
 * client should stop sending it. A small one is read to its end after the response and the connection
 * stays (boundUnreadBody). Call before the headers go out (the default error page and `errors` do).
 */
export function closeIfBodyUnread(res: HttpResponse): void {
  const req = res.req as IncomingMessage | undefined;
  if (!req || res.headersSent || !declaresBody(req.headers) || !bodyLeftUnread(req)) return;
  const length = req.headers['content-length'];
  if (length === undefined || !(Number(length) <= UNREAD_BODY_BYTES)) res.setHeader('Connection', 'close');
}

/**
 * Bounds what is read of a request body that nobody read. When the response completes, Node reads and drops
 * the rest of the body to keep the connection for the next request: for a `Content-Length` of 100 GB or an
 * endless chunked upload, for ever. Instead, at most UNREAD_BODY_BYTES (and UNREAD_BODY_MS) more are read:
 * a body that ends within that keeps the connection alive; past it the connection is cut. A response that
 * already said `Connection: close` is closed by Node right after it is sent. Called once per request.
 */
export function boundUnreadBody(req: IncomingMessage, res: HttpResponse): void {
  if (!declaresBody(req.headers)) return;
  // 'prefinish' comes before Node's own 'finish' listener decides to drain the body: reading it here
  // (resume) makes Node leave it to us.
  res.once('prefinish', () => {
    if (!bodyLeftUnread(req) || /\bclose\b/i.test(String(res.getHeader('connection') ?? ''))) return;
    let left = UNREAD_BODY_BYTES;
    const cut = () => {
      done();
      req.socket.destroy();
    };
    const timer = setTimeout(cut, UNREAD_BODY_MS).unref();
    const count = (chunk: Buffer) => {
      left -= chunk.length;
      if (left < 0) cut();
    };
    const done = () => {
      clearTimeout(timer);
      req.off('data', count);
      req.off('end', done);
      req.off('error', done);
      req.off('close', done);
    };
    req.on('data', count);
    req.once('end', done);
    req.once('error', done);
    req.once('close', done);
    req.resume();
  });
}
