// The public server's own WebSocket endpoint for tunnel links (WsLink), at the byte level: a raw TCP client
// speaks RFC 6455 by hand (good frames, split anywhere, and broken ones), and ws's client sends it big messages.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { unmask } from '../../src/tunnel/ws-frames.js';
import { waitFor } from '../helpers/http.js';
import { clientFrame, linkServer, rawClient, type LinkServer } from './ws-peers.js';

const CONT = 0x0;
const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

/** `promise`, or a failure saying what did not come within 5 s (a test of a broken server fails, not hangs). */
function soon<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within 5 s`)), 5000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const r = Buffer.from(reason);
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

test('unmasking, natively or a word at a time, at any alignment and mask phase, is the XOR', () => {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const backing = randomBytes(300);
  for (const native of [false, true]) {
    for (let offset = 0; offset < 5; offset++) {
      for (const length of [0, 1, 3, 4, 5, 63, 64, 65, 200]) {
        for (let phase = 0; phase < 4; phase++) {
          const buf = Buffer.from(backing).subarray(offset, offset + length);
          const expected = Buffer.from(buf.map((b, i) => b ^ mask[(phase + i) & 3]));
          unmask(buf, mask, phase, native);
          assert.deepEqual(
            buf,
            expected,
            `native ${native}, offset ${offset}, length ${length}, phase ${phase}`,
          );
        }
      }
    }
  }
});

describe('the tunnel server WebSocket endpoint', () => {
  let server: LinkServer;
  before(async () => {
    server = await linkServer();
  });
  after(() => server.close());

  test('the handshake is answered with the key; one that is not a version 13 WebSocket handshake is refused', async () => {
    const client = await rawClient(server.port);
    const accepted = await server.next();
    assert.equal(client.status, 101);
    // RFC 6455 §1.3's example key and answer.
    assert.match(client.head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/);
    assert.match(client.head, /\r\nUpgrade: websocket\r\n/);
    assert.doesNotMatch(client.head, /Sec-WebSocket-Extensions/i);
    client.close();
    await accepted.closed;

    const refusals: [Record<string, string | undefined>, string, number, RegExp][] = [
      [{ 'Sec-WebSocket-Version': '8' }, 'GET', 426, /version 13/],
      [{ 'Sec-WebSocket-Version': undefined }, 'GET', 426, /version 13/],
      [{ 'Sec-WebSocket-Key': 'c2hvcnQ=' }, 'GET', 400, /Sec-WebSocket-Key/],
      [{ 'Sec-WebSocket-Key': undefined }, 'GET', 400, /Sec-WebSocket-Key/],
      [{ Upgrade: 'h2c' }, 'GET', 400, /Upgrade header/],
      [{}, 'POST', 405, /GET request/],
    ];
    for (const [headers, method, status, body] of refusals) {
      const what = `${method} ${JSON.stringify(headers)}`;
      const refused = await rawClient(server.port, headers, method);
      assert.equal(refused.status, status, what);
      if (status === 426) assert.match(refused.head, /\r\nSec-WebSocket-Version: 13(\r\n|$)/, what);
      assert.match(refused.head, /\r\nConnection: close(\r\n|$)/, what);
      assert.match(await refused.rest(), body, what);
    }
  });

  test('frames split at every byte boundary, or fed byte by byte, give the same bytes; pings are answered', async () => {
    const a = randomBytes(10);
    const b = randomBytes(300);
    const d = randomBytes(130);
    const e = randomBytes(5);
    const frames = Buffer.concat([
      clientFrame(BINARY, a, { fin: false }),
      clientFrame(PING, Buffer.from('hi')),
      clientFrame(CONT, b, { fin: false }), // a 16-bit length
      clientFrame(CONT, Buffer.alloc(0)),
      clientFrame(BINARY, d, { len64: true, mask: Buffer.alloc(4) }), // a 64-bit length, a zero mask
      clientFrame(BINARY, e),
    ]);
    const expected = Buffer.concat([a, b, d, e]);
    const client = await rawClient(server.port);
    const accepted = await server.next();
    let sent = 0;
    /** Writes `parts` one at a time, each read by the server before the next goes. */
    const feed = async (parts: Buffer[], what: string) => {
      const before = accepted.pieces.length;
      for (const part of parts) {
        client.socket.write(part);
        sent += part.length;
        await accepted.read(sent);
      }
      const pong = await soon(client.frame(), `the pong (${what})`);
      assert.deepEqual([pong.opcode, pong.payload.toString()], [PONG, 'hi'], what);
      assert.deepEqual(Buffer.concat(accepted.pieces.slice(before)), expected, what);
    };
    for (let i = 1; i < frames.length; i++) {
      await feed([frames.subarray(0, i), frames.subarray(i)], `split at ${i}`);
    }
    await feed(
      [...frames].map((x) => Buffer.from([x])),
      'byte by byte',
    );
    assert.deepEqual(accepted.errors, []);
    client.close();
    await accepted.closed;
  });

  test('a 1 MB message from ws arrives intact, in pieces; the server sends it back whole', async () => {
    for (const zeroMask of [false, true]) {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, {
        perMessageDeflate: false,
        // A zero mask is what the tunnel client uses to this machine or inside TLS.
        ...(zeroMask && { generateMask: (mask: Buffer) => void mask.fill(0) }),
      });
      const accepted = await server.next();
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const body = randomBytes(1024 * 1024);
      ws.send(body);
      await waitFor(
        () => accepted.pieces.reduce((n, p) => n + p.length, 0) >= body.length,
        10_000,
        'the message',
      );
      assert.ok(accepted.pieces.length > 1, `${accepted.pieces.length} pieces`);
      // Each piece is a view into a chunk the socket read (unmasked there), not a copy.
      const inChunk = (p: Buffer) =>
        accepted.chunks.some(
          (c) =>
            c.buffer === p.buffer &&
            p.byteOffset >= c.byteOffset &&
            p.byteOffset + p.length <= c.byteOffset + c.length,
        );
      assert.ok(accepted.pieces.every(inChunk), 'pieces are views into the socket chunks');
      assert.deepEqual(Buffer.concat(accepted.pieces), body, `zero mask: ${zeroMask}`);
      const echoed = new Promise<Buffer>((resolve) => ws.once('message', (m: Buffer) => resolve(m)));
      accepted.link.send(body);
      assert.deepEqual(await echoed, body);
      // The server closes: ws hears its code and reason, and finishes the close handshake.
      const wsClosed = new Promise<[number, string]>((resolve) =>
        ws.once('close', (code, reason) => resolve([code, reason.toString()])),
      );
      accepted.link.close(4000, 'done here');
      assert.deepEqual(await wsClosed, [4000, 'done here']);
      assert.deepEqual(await accepted.closed, { code: 4000, reason: 'done here' }, 'ws echoes the close');
    }
  });

  test('a close from the client is answered with its code, then the server ends the connection', async () => {
    const client = await rawClient(server.port);
    const accepted = await server.next();
    client.socket.write(clientFrame(PONG, Buffer.from('unasked')));
    await waitFor(() => accepted.pongs === 1, 5000, 'the pong event');
    client.socket.write(
      Buffer.concat([
        clientFrame(CLOSE, closePayload(4001, 'bye')),
        clientFrame(BINARY, Buffer.from('late')),
      ]),
    );
    const f = await soon(client.frame(), 'the answering close frame');
    assert.deepEqual([f.opcode, f.payload.readUInt16BE(0)], [CLOSE, 4001]);
    await client.ended;
    assert.deepEqual(await accepted.closed, { code: 4001, reason: 'bye' });
    assert.deepEqual(accepted.pieces, [], 'nothing is read after the close frame');
  });

  const broken: [string, Buffer, number, RegExp][] = [
    ['an unmasked frame', clientFrame(BINARY, Buffer.from('x'), { mask: false }), 1002, /^unmasked frame/],
    ['a text frame', clientFrame(TEXT, Buffer.from('hello')), 1003, /^text frame/],
    [
      'a frame over the limit',
      clientFrame(BINARY, Buffer.alloc(0), { length: 64 * 1024 * 1024 + 1 }),
      1009,
      /^frame longer than/,
    ],
    [
      'a 64-bit length',
      clientFrame(BINARY, Buffer.alloc(0), { length: 2 ** 40 }),
      1009,
      /^frame longer than/,
    ],
    [
      'a fragmented ping',
      clientFrame(PING, Buffer.from('x'), { fin: false }),
      1002,
      /^fragmented control frame/,
    ],
    ['a ping of 126 bytes', clientFrame(PING, Buffer.alloc(126)), 1002, /^control frame longer than 125/],
    ['a reserved bit', clientFrame(BINARY, Buffer.from('x'), { rsv: 0x40 }), 1002, /^reserved bits set/],
    [
      'a continuation outside a message',
      clientFrame(CONT, Buffer.from('x')),
      1002,
      /^continuation frame outside/,
    ],
    [
      'a message inside a message',
      Buffer.concat([
        clientFrame(BINARY, Buffer.from('x'), { fin: false }),
        clientFrame(BINARY, Buffer.from('y')),
      ]),
      1002,
      /^new message before the last one ended/,
    ],
    ['opcode 3', clientFrame(3, Buffer.from('x')), 1002, /^unknown opcode 3/],
    ['a close of 1 byte', clientFrame(CLOSE, Buffer.from([3])), 1002, /^close frame of 1 byte/],
    ['a close with code 1005', clientFrame(CLOSE, closePayload(1005)), 1002, /^invalid close code 1005/],
    [
      'a close reason not in UTF-8',
      clientFrame(CLOSE, closePayload(1000, Buffer.from([0xc3, 0x28]))),
      1007,
      /^close reason is not UTF-8/,
    ],
  ];
  for (const [what, bytes, code, reason] of broken) {
    test(`${what}: closed with ${code} and the reason, nothing after it read`, async () => {
      const client = await rawClient(server.port);
      const accepted = await server.next();
      // A good frame before, one after in the same write.
      client.socket.write(
        Buffer.concat([
          clientFrame(BINARY, Buffer.from('before')),
          bytes,
          clientFrame(BINARY, Buffer.from('after')),
        ]),
      );
      const f = await soon(client.frame(), 'the close frame');
      assert.equal(f.opcode, CLOSE);
      assert.equal(f.payload.readUInt16BE(0), code);
      assert.match(f.payload.subarray(2).toString(), reason);
      await client.ended;
      await accepted.closed;
      assert.equal(accepted.errors.length, 1);
      assert.match(accepted.errors[0], new RegExp(`^${code} ${reason.source.slice(1)}`));
      assert.equal(
        Buffer.concat(accepted.pieces).toString(),
        what === 'a message inside a message' ? 'beforex' : 'before',
      );
    });
  }
});
