// The public server's end of a tunnel link: a WebSocket endpoint of our own (RFC 6455, server side, binary
// only, no extensions) instead of ws's. ws's receiver copies every message that spans two socket reads into
// a fresh buffer (with ~64 KB messages, almost all of them), and every fresh buffer brings V8's next full GC
// closer; here the client's frames are unmasked in place in the socket's chunks and their payload goes on in
// those pieces ('message' events: pieces of the link's byte stream, whose message boundaries mean nothing).
// The tunnel client still dials with ws: both satisfy LinkSocket (link.ts).
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from '../core/node-http.js';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LinkSocket } from './link.js';
import {
  CLOSE_NO_STATUS,
  CLOSE_NORMAL,
  OP_BINARY,
  OP_CLOSE,
  OP_PING,
  OP_PONG,
  WsFrameReader,
  WsProtocolError,
  closeFramePayload,
  serverFrameHeader,
} from './ws-frames.js';

// readyState values, as ws has them.
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** RFC 6455 §1.3: the GUID a server appends to the client's key. */
const KEY_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A client's key: 16 random bytes in base64. */
const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;
/** How long a closing connection may take to finish the close handshake before it is cut. */
const CLOSE_TIMEOUT_MS = 2000;
const EMPTY = Buffer.alloc(0);

export interface WsLinkOptions {
  /** The longest frame the client may send; a longer one closes the link with 1009. */
  maxPayload: number;
  /** Hears why a client that broke the protocol is cut (before it is told, with the same code and reason). */
  onProtocolError?: (code: number, reason: string) => void;
}

/**
 * Answers the WebSocket handshake of `req` on `socket` (an upgrade request's connection, already ours): a
 * 101 and the link, or an error response (the request is not a WebSocket handshake we accept) and undefined,
 * the connection then ending. `head` holds bytes that came after the request head.
 */
export function acceptWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: WsLinkOptions,
): WsLink | undefined {
  const refusal = checkHandshake(req);
  if (refusal) {
    refuseHandshake(socket, refusal.status, refusal.message, refusal.headers);
    return undefined;
  }
  if (!socket.readable || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  const accept = createHash('sha1')
    .update(String(req.headers['sec-websocket-key']) + KEY_GUID)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  return new WsLink(socket, head, options);
}

interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** What a WebSocket handshake must have (RFC 6455 §4.2.1); the refusal it gets otherwise. */
function checkHandshake(req: IncomingMessage): Refusal | undefined {
  if (req.method !== 'GET') return { status: 405, message: 'a WebSocket handshake is a GET request' };
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return { status: 400, message: 'the Upgrade header must be websocket' };
  }
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    return { status: 400, message: 'missing or invalid Sec-WebSocket-Key header' };
  }
  if (req.headers['sec-websocket-version'] !== '13') {
    return {
      status: 426,
      message: 'this server speaks WebSocket version 13',
      headers: { 'Sec-WebSocket-Version': '13' },
    };
  }
  return undefined;
}

function refuseHandshake(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  const fields = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(message)),
    ...headers,
  };
  const lines = Object.entries(fields).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${lines.join('')}\r\n${message}`);
}

/**
 * An open WebSocket on a connection whose handshake was answered. Events: 'message' (a piece of binary
 * payload), 'pong', 'close' (code, reason) once the connection is gone. Never emits 'error': a failing
 * connection just closes.
 */
export class WsLink extends EventEmitter implements LinkSocket {
  readonly OPEN = OPEN;
  private state = OPEN;
  private closeSent = false;
  private closeReceived = false;
  /** What the 'close' event tells: the client's close code and reason (1006: the connection just ended). */
  private closeCode = 1006;
  private closeReason = '';
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly reader: WsFrameReader;

  constructor(
    private readonly socket: Duplex,
    head: Buffer,
    private readonly options: WsLinkOptions,
  ) {
    super();
    this.reader = new WsFrameReader(
      {
        data: (piece) => this.emit('message', piece),
        // Copied: the payload lives in the reader's scratch buffer, reused by the next control frame.
        ping: (payload) => this.state === OPEN && this.writeFrame(OP_PONG, Buffer.from(payload)),
        pong: () => this.emit('pong'),
        close: (code, reason) => this.closeFrame(code, reason),
      },
      options.maxPayload,
    );
    const s = socket as Partial<Socket>;
    // The request's timeouts are over: the link has its own liveness (heartbeat); small frames go at once.
    s.setTimeout?.(0);
    s.setNoDelay?.(true);
    if (head.length > 0) socket.unshift(head);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.once('close', this.onClose);
  }

  get readyState(): number {
    return this.state;
  }

  /** Bytes written and not yet handed to the OS (the mux holds back data above a mark). */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** Sends one binary message (no copy: the header and `data` leave in one write). Dropped unless open. */
  send(data: Buffer, written?: (err?: Error | null) => void): void {
    if (this.state === OPEN) this.writeFrame(OP_BINARY, data, written);
  }

  ping(): void {
    if (this.state === OPEN) this.writeFrame(OP_PING, EMPTY);
  }

  /** Starts the close handshake; a client that does not finish it within 2 s is cut. */
  close(code = CLOSE_NORMAL, reason = ''): void {
    if (this.state !== OPEN) return;
    this.state = CLOSING;
    this.sendClose(code, reason);
    if (this.closeReceived) this.socket.end();
    this.armCloseTimer();
  }

  /** Cuts the connection at once. */
  terminate(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSING;
    this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof WsProtocolError)) throw err;
      this.fail(err.code, err.message);
    }
  };

  /** The client ended its side without a close frame: so does the server. */
  private readonly onEnd = (): void => {
    this.reader.stop();
    if (this.state === OPEN) this.state = CLOSING;
    this.socket.end();
  };

  private readonly onError = (): void => {
    this.terminate();
  };

  private readonly onClose = (): void => {
    this.state = CLOSED;
    this.reader.stop();
    clearTimeout(this.closeTimer);
    this.socket.off('data', this.onData);
    this.emit('close', this.closeCode, this.closeReason);
  };

  /** The client's close frame: answered (unless we sent ours already), then the server ends the connection. */
  private closeFrame(code: number, reason: string): void {
    this.reader.stop();
    this.closeReceived = true;
    this.closeCode = code;
    this.closeReason = reason;
    if (this.state === OPEN) {
      this.state = CLOSING;
      // The client's code echoed (RFC 6455 §5.5.1); a close without one is answered without one.
      if (code === CLOSE_NO_STATUS) this.writeFrame(OP_CLOSE, EMPTY);
      else this.sendClose(code, '');
    }
    this.socket.end();
    this.armCloseTimer();
  }

  /** A client that broke the protocol: told why (code and reason), then the connection ends. */
  private fail(code: number, reason: string): void {
    this.reader.stop();
    this.options.onProtocolError?.(code, reason);
    if (this.state === OPEN) {
      this.state = CLOSING;
      this.sendClose(code, reason);
    }
    this.socket.end();
    this.armCloseTimer();
  }

  private sendClose(code: number, reason: string): void {
    if (this.closeSent) return;
    this.closeSent = true;
    this.writeFrame(OP_CLOSE, closeFramePayload(code, reason));
  }

  private armCloseTimer(): void {
    if (this.closeTimer || this.state === CLOSED) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  /** `written` hears when the socket has written the frame (not if it cannot be written any more). */
  private writeFrame(opcode: number, payload: Buffer, written?: (err?: Error | null) => void): void {
    const s = this.socket;
    if (s.writableEnded || s.destroyed) return;
    const header = serverFrameHeader(opcode, payload.length);
    if (payload.length === 0) {
      s.write(header, written);
      return;
    }
    s.cork();
    s.write(header);
    s.write(payload, written);
    s.uncork();
  }
}
