// writeExchange: what the tunnel's response writer leaves attached to the body stream once a response is over.
// An HTTP/2 stream object outlives its request in memory (Node keeps it reachable from old-generation objects
// until a full GC), so a listener left on it that closes over the response would keep every finished
// response, and the request behind it, alive and promoted into the old generation under load.
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { writeExchange } from '../../src/middleware/tunnel/relay.js';
import { ignoreError } from '../../src/tunnel/transport.js';
import { request } from '../helpers/http.js';

/** One server whose handler answers with writeExchange over the given body; resolves when the write is over. */
async function serveOnce(
  body: PassThrough,
  feed: (body: PassThrough) => void,
): Promise<{ port: number; written: Promise<void>; close(): Promise<void> }> {
  let written!: Promise<void>;
  const server = http.createServer((_req, res: ServerResponse) => {
    written = writeExchange(res, { status: 200, headers: { 'content-type': 'text/plain' }, body });
    feed(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get written() {
      return written;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('after a response is written, the body keeps no error listener that reaches the response', async () => {
  const body = new PassThrough();
  const s = await serveOnce(body, (b) => b.end('hello through the tunnel'));
  try {
    const res = await request(s.port, '/');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'hello through the tunnel');
    await s.written;
    const left = body.listeners('error');
    assert.ok(left.length > 0, 'a late error on the body must still be handled');
    assert.ok(
      left.every((l) => l === ignoreError),
      'only the scope-free ignoreError may stay on the body',
    );
  } finally {
    await s.close();
  }
});

test('a body failing mid-response cuts the connection, and a later error is harmless', async () => {
  const body = new PassThrough();
  const s = await serveOnce(body, (b) => {
    b.write('partial');
    setImmediate(() => b.destroy(new Error('tunnel stream reset')));
  });
  try {
    await assert.rejects(request(s.port, '/'), /socket hang up|aborted|ECONNRESET|premature/i);
    await s.written;
    // The response is over; an error arriving now lands on ignoreError instead of crashing the process.
    body.emit('error', new Error('late'));
    assert.ok(body.listeners('error').every((l) => l === ignoreError));
  } finally {
    await s.close();
  }
});
