// The request head our HTTP/1.1 clients write (the proxy's, the tunnel client's): `METHOD SP path SP
// HTTP/1.1`, then the header fields as the caller built them. Nothing with CR, LF, NUL or another control
// character reaches the wire: header_upstream rules render placeholders (a decoded query value can hold CRLF),
// and a value passed through unchecked would let a client inject header fields or whole requests into the
// upstream connection.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What Node's http client refuses in a header value (ERR_INVALID_CHAR); ours too. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** What Node's http client refuses in a path (ERR_UNESCAPED_CHARACTERS): spaces, controls, non-latin1. */
const BAD_PATH = /[^\x21-\xff]/;

/** A header or path that must not be sent; the proxy answers 502 and sends nothing. */
export class InvalidRequestHeadError extends Error {}

/** How the body is framed on the wire. */
export type BodyFraming = 'none' | 'length' | 'chunked';

export interface RequestHead {
  /** Latin-1 text, ending with the empty line. */
  readonly text: string;
  /** The body must be sent in chunked encoding (a streamed body of unknown length). */
  readonly chunked: boolean;
}

/**
 * Serializes the head. `streamed` says the body comes from a stream: without a Content-Length it is sent
 * chunked (as Node's and Go's clients do). Without keep-alive, `Connection: close` asks the upstream to
 * close after the response. Array values become repeated lines (Cookie, joined with "; ", excepted).
 */
export function serializeHead(
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  streamed: boolean,
  keepAlive: boolean,
): RequestHead {
  if (!TOKEN.test(method)) throw new InvalidRequestHeadError(`invalid method ${JSON.stringify(method)}`);
  if (BAD_PATH.test(path)) throw new InvalidRequestHeadError('invalid character in the request path');
  let text = `${method} ${path} HTTP/1.1\r\n`;
  let hasLength = false;
  let chunked = false;
  let hasConnection = false;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (!TOKEN.test(name)) throw new InvalidRequestHeadError(`invalid header name ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (lower === 'content-length') hasLength = true;
    else if (lower === 'connection') hasConnection = true;
    else if (lower === 'transfer-encoding') chunked = /(?:^|,)\s*chunked\s*$/i.test(String(value));
    if (typeof value === 'number') text += `${name}: ${value}\r\n`;
    else if (typeof value === 'string') text += fieldLine(name, value);
    else if (lower === 'cookie') text += fieldLine(name, value.join('; '));
    else for (const v of value) text += fieldLine(name, v);
  }
  if (streamed && !hasLength && !chunked) {
    text += 'Transfer-Encoding: chunked\r\n';
    chunked = true;
  }
  if (!keepAlive && !hasConnection) text += 'Connection: close\r\n';
  return { text: `${text}\r\n`, chunked };
}

/** A body up to this size is copied into the head's buffer: one write, one syscall. */
const COALESCE_BODY_BYTES = 16 * 1024;

/** Writes a request whose body is all at hand (possibly empty): the head and a small body in one write. */
export function writeWholeRequest(socket: Writable, head: RequestHead, body: Buffer): void {
  if (body.length === 0) {
    socket.write(head.chunked ? `${head.text}0\r\n\r\n` : head.text, 'latin1');
    return;
  }
  if (!head.chunked && body.length <= COALESCE_BODY_BYTES) {
    const buf = Buffer.allocUnsafe(head.text.length + body.length);
    buf.write(head.text, 0, 'latin1');
    body.copy(buf, head.text.length);
    socket.write(buf);
    return;
  }
  socket.cork();
  socket.write(head.text, 'latin1');
  writeBodyPart(socket, body, head.chunked);
  if (head.chunked) endChunkedBody(socket);
  socket.uncork();
}

/** Writes a part of a streamed body (a chunk of its own when `chunked`); false: wait for 'drain'. */
export function writeBodyPart(socket: Writable, part: Buffer, chunked: boolean): boolean {
  if (!chunked) return socket.write(part);
  if (part.length === 0) return true;
  socket.cork();
  socket.write(`${part.length.toString(16)}\r\n`, 'latin1');
  socket.write(part);
  const ok = socket.write('\r\n', 'latin1');
  socket.uncork();
  return ok;
}

/** The last chunk of a chunked body (no trailers). */
export function endChunkedBody(socket: Writable): void {
  socket.write('0\r\n\r\n', 'latin1');
}

function fieldLine(name: string, value: string): string {
  if (BAD_VALUE.test(value))
    throw new InvalidRequestHeadError(`invalid character (CR, LF, NUL or a control) in header ${name}`);
  return `${name}: ${value}\r\n`;
}

/**
 * Whether a request may be sent again after its pooled connection turned out to be closed (RFC 9110 §9.2.2
 * idempotent methods, or an Idempotency-Key), as Go's Transport decides: a body-less POST must not run twice.
 */
export function replayable(method: string, headers: OutgoingHttpHeaders): boolean {
  return (
    IDEMPOTENT.has(method) ||
    headers['idempotency-key'] !== undefined ||
    headers['x-idempotency-key'] !== undefined
  );
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
