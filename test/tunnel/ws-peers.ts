// Peers for the tests of the public server's WebSocket endpoint (WsLink): a server that accepts links on
// 127.0.0.1, and a raw TCP client that speaks RFC 6455 by hand (masked frames of any shape, good or bad).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptWebSocket, type WsLink } from '../../src/tunnel/ws-link.js';

export interface Accepted {
  link: WsLink;
  socket: net.Socket;
  /** The binary payload pieces, in order. */
  pieces: Buffer[];
  /** The socket's chunks, as read. */
  chunks: Buffer[];
  pongs: number;
  /** What onProtocolError heard. */
  errors: string[];
  /** The 'close' event's code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once the server has read `n` bytes of frames from this connection (a chunk of them arrived). */
  read(n: number): Promise<void>;
}

export interface LinkServer {
  port: number;
  /** The next link accepted. */
  next(): Promise<Accepted>;
  close(): Promise<void>;
}

export async function linkServer(maxPayload = 64 * 1024 * 1024): Promise<LinkServer> {
  const server = http.createServer();
  const accepted: Accepted[] = [];
  const waiting: ((a: Accepted) => void)[] = [];
  server.on('upgrade', (req: http.IncomingMessage, duplex: Duplex, head: Buffer) => {
    const socket = duplex as net.Socket;
    const errors: string[] = [];
    const link = acceptWebSocket(req, socket, head, {
      maxPayload,
      onProtocolError: (code, why) => errors.push(`${code} ${why}`),
    });
    if (!link) return;
    // Frame bytes read: the socket's count less the request head (and whatever came with it).
    const start = socket.bytesRead - head.length;
    const readers: { n: number; resolve: () => void }[] = [];
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const got = socket.bytesRead - start;
      for (const r of readers.splice(0)) {
        if (got >= r.n) r.resolve();
        else readers.push(r);
      }
    });
    const a: Accepted = {
      link,
      socket,
      pieces: [],
      chunks,
      pongs: 0,
      errors,
      closed: new Promise((resolve) =>
        link.once('close', (code: number, reason: string) => resolve({ code, reason })),
      ),
      read: (n) =>
        new Promise((resolve) => {
          if (socket.bytesRead - start >= n) resolve();
          else readers.push({ n, resolve });
        }),
    };
    link.on('message', (piece: Buffer) => a.pieces.push(piece));
    link.on('pong', () => a.pongs++);
    accepted.push(a);
    waiting.shift()?.(a);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let taken = 0;
  return {
    port: (server.address() as AddressInfo).port,
    next: () =>
      new Promise((resolve) => {
        if (accepted.length > taken) resolve(accepted[taken++]);
        else
          waiting.push((a) => {
            taken++;
            resolve(a);
          });
      }),
    close: async () => {
      for (const a of accepted) a.link.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A raw client connection after its handshake: the answer's head, and the server's frames as they come. */
export interface RawClient {
  socket: net.Socket;
  status: number;
  head: string;
  /** The next frame from the server; rejects when the connection ends first. */
  frame(): Promise<ServerFrame>;
  /** Resolves when the server ended the connection. */
  ended: Promise<void>;
  /** Everything after the answer's head not read as frames, once the connection ended (a refusal's body). */
  rest(): Promise<string>;
  close(): void;
}

export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Sends a handshake (the given header lines replace the defaults of the same name) and reads the answer. */
export async function rawClient(
  port: number,
  headers: Record<string, string | undefined> = {},
  method = 'GET',
  path = '/',
): Promise<RawClient> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const fields: Record<string, string | undefined> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': SAMPLE_KEY,
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = Object.entries(fields)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}: ${v}\r\n`);
  socket.write(`${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n`);
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | undefined;
  const ended$ = new Promise<void>((resolve) => {
    socket.once('close', () => {
      ended = true;
      wake?.();
      resolve();
    });
  });
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  const more = () =>
    new Promise<void>((resolve, reject) => {
      if (ended) reject(new Error('the connection ended'));
      else
        wake = () => {
          wake = undefined;
          resolve();
        };
    });
  let headEnd: number;
  while ((headEnd = buf.indexOf('\r\n\r\n')) < 0) await more();
  const head = buf.subarray(0, headEnd).toString('latin1');
  buf = buf.subarray(headEnd + 4);
  const status = Number(head.split(' ')[1]);
  const frame = async (): Promise<ServerFrame> => {
    for (;;) {
      const parsed = parseServerFrame(buf);
      if (parsed) {
        buf = buf.subarray(parsed.size);
        return parsed.frame;
      }
      await more();
    }
  };
  const rest = async () => {
    await ended$;
    return buf.toString('utf8');
  };
  return { socket, status, head, frame, ended: ended$, rest, close: () => socket.destroy() };
}

function parseServerFrame(b: Buffer): { frame: ServerFrame; size: number } | undefined {
  if (b.length < 2) return undefined;
  if (b[1] & 0x80) throw new Error('the server masked a frame');
  let len = b[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = b.readUInt32BE(6);
    at = 10;
  }
  if (b.length < at + len) return undefined;
  return {
    frame: { fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(at, at + len)) },
    size: at + len,
  };
}

export interface FrameShape {
  fin?: boolean;
  /** Bits 0x70 of the first byte. */
  rsv?: number;
  /** false: unmasked (a broken client). A Buffer: this mask key. */
  mask?: boolean | Buffer;
  /** The length to put in the header (default: the payload's), in the shortest encoding unless `len64`. */
  length?: number;
  len64?: boolean;
}

/** One client frame's bytes. */
export function clientFrame(
  opcode: number,
  payload: Buffer = Buffer.alloc(0),
  shape: FrameShape = {},
): Buffer {
  const fin = shape.fin ?? true;
  const length = shape.length ?? payload.length;
  const masked = shape.mask !== false;
  const key = Buffer.isBuffer(shape.mask) ? shape.mask : randomBytes(4);
  let header: Buffer;
  if (length < 126 && !shape.len64) header = Buffer.from([0, length]);
  else if (length < 0x10000 && !shape.len64) {
    header = Buffer.from([0, 126, 0, 0]);
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    header.writeUInt32BE(length >>> 0, 6);
  }
  header[0] = (fin ? 0x80 : 0) | (shape.rsv ?? 0) | opcode;
  if (!masked) return Buffer.concat([header, payload]);
  header[1] |= 0x80;
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([header, key, body]);
}
