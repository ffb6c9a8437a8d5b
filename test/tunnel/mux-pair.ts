// Real WebSocket links on 127.0.0.1 for the mux tests: the server's end is the public server's own
// WebSocket endpoint (WsLink) and opens streams (as the public server does), the client's is ws's WebSocket
// and answers them (as the tunnel client does), or a raw client plays a broken peer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { frameHeader } from '../../src/tunnel/frames.js';
import { wsMux } from '../../src/tunnel/link.js';
import type { Mux } from '../../src/tunnel/mux.js';
import { acceptWebSocket, type WsLink } from '../../src/tunnel/ws-link.js';

export interface MuxServer {
  port: number;
  /** The opener side of the next WebSocket that connects. */
  nextLink(): Promise<{ mux: Mux; ws: WsLink; reasons: string[] }>;
  close(): Promise<void>;
}

export async function muxServer(): Promise<MuxServer> {
  const server = http.createServer();
  const links = new Set<WsLink>();
  const waiting: ((link: { mux: Mux; ws: WsLink; reasons: string[] }) => void)[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const reasons: string[] = [];
    const ws = acceptWebSocket(req, socket, head, {
      maxPayload: 64 * 1024 * 1024,
      onProtocolError: (code, why) => reasons.push(`${code} ${why}`),
    });
    if (!ws) return;
    links.add(ws);
    ws.once('close', () => links.delete(ws));
    waiting.shift()?.({ mux: wsMux(ws, socket, (why) => reasons.push(why)), ws, reasons });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    nextLink: () => new Promise((resolve) => waiting.push(resolve)),
    close: async () => {
      for (const ws of links) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A connected pair: `opener` on the WebSocket server, `acceptor` on the client. */
export async function muxPair(server: MuxServer): Promise<{ opener: Mux; acceptor: Mux; close(): void }> {
  const link = server.nextLink();
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
  const acceptor = await new Promise<Mux>((resolve, reject) => {
    let socket: import('node:stream').Duplex | undefined;
    ws.once('upgrade', (res) => (socket = res.socket));
    ws.once('open', () => resolve(wsMux(ws, socket)));
    ws.once('error', reject);
  });
  const { mux: opener } = await link;
  return { opener, acceptor, close: () => ws.terminate() };
}

/** A raw WebSocket client that sends whatever frames a test makes, and hears how the link was closed. */
export async function rawPeer(server: MuxServer): Promise<{
  /** The opener side on the server, and the reasons it gave for cutting the link. */
  link: { mux: Mux; reasons: string[] };
  send(...frames: Buffer[]): void;
  closed: Promise<{ code: number; reason: string }>;
  /** Frames the server sent, as their headers saw them. */
  received: { type: number; stream: number }[];
}> {
  const link = server.nextLink();
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
  const received: { type: number; stream: number }[] = [];
  ws.on('message', (data: Buffer) => {
    // A test's server sends few, small frames: each message starts with a header.
    if (data.length >= 10) received.push({ type: data[0], stream: data.readUInt32BE(2) });
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { link: await link, send: (...frames) => ws.send(Buffer.concat(frames)), closed, received };
}

/** One frame's bytes. */
export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  return Buffer.concat([frameHeader(type, flags, stream, payload.length), payload]);
}
