// The WebSocket byte stream under the tunnel's HTTP/2: what goes on the wire per write.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { wsStream } from '../../src/tunnel/transport.js';

/** A connected WebSocket pair on 127.0.0.1; `received` collects the server side's messages. */
async function wsPair(): Promise<{
  client: WebSocket;
  received: Buffer[];
  /** Resolves once `n` messages have arrived. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const received: Buffer[] = [];
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
    perMessageDeflate: false,
  });
  const peer = await accepted;
  let waiter: { n: number; resolve: () => void } | undefined;
  peer.on('message', (data: Buffer) => {
    received.push(data);
    if (waiter && received.length >= waiter.n) waiter.resolve();
  });
  const waitFor = (n: number) =>
    new Promise<void>((resolve) => {
      if (received.length >= n) resolve();
      else waiter = { n, resolve };
    });
  await new Promise((resolve) =>
    client.readyState === client.OPEN ? resolve(0) : client.once('open', resolve),
  );
  return {
    client,
    received,
    waitFor,
    close: async () => {
      client.terminate();
      peer.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('buffers written corked (one nghttp2 flush) travel as one WebSocket message', async () => {
  const pair = await wsPair();
  try {
    const stream = wsStream(pair.client);
    const written = new Promise<void>((resolve) => {
      stream.cork();
      stream.write(Buffer.from('frame-header|'));
      stream.write(Buffer.from('data|'));
      stream.write(Buffer.from('next-frame'), () => resolve());
      stream.uncork();
    });
    await written;
    await pair.waitFor(1);
    // A further single write is its own message; its arrival also proves nothing else was pending.
    await new Promise<void>((resolve) => stream.write(Buffer.from('alone'), () => resolve()));
    await pair.waitFor(2);
    assert.deepEqual(
      pair.received.map((b) => b.toString()),
      ['frame-header|data|next-frame', 'alone'],
    );
  } finally {
    await pair.close();
  }
});

test('a big flush (bulk DATA) goes buffer by buffer, uncopied and far from the peer maxPayload', async () => {
  const pair = await wsPair();
  try {
    const stream = wsStream(pair.client);
    const a = Buffer.alloc(200 * 1024, 'a');
    const b = Buffer.alloc(200 * 1024, 'b');
    await new Promise<void>((resolve, reject) => {
      stream.cork();
      stream.write(a);
      stream.write(b, (err) => (err ? reject(err) : resolve()));
      stream.uncork();
    });
    await pair.waitFor(2);
    assert.deepEqual(
      pair.received.map((m) => [m.length, m[0]]),
      [
        [a.length, 'a'.charCodeAt(0)],
        [b.length, 'b'.charCodeAt(0)],
      ],
    );
  } finally {
    await pair.close();
  }
});
