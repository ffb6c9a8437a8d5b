// The proxy client's reused memory (h1/buffers.ts): every upstream read lands in one shared buffer and
// bodies of a known length up to 256 KB are collected in reused buffers. A buffer reused too early, or a view
// of the read buffer kept past its read, shows up here as a wrong byte in some other response.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { selfSigned, type KeyPair } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/process.js';
import { startSite, type Site } from './helpers.js';

/** The body for (length, seed): every byte depends on both, so a byte from another response is noticed. */
function bodyOf(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Answers GET /<length>/<seed>/<framing> with bodyOf(length, seed), framed by Content-Length or chunked,
 * written in pieces across turns of the event loop (so the proxy reads it in several parts). /split answers
 * with its head written in three parts, apart in time, so the proxy's parser must keep a partial head.
 */
async function upstream(tlsPair?: KeyPair): Promise<{ addr: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const onSocket = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const path = pending.slice(0, end).split(' ')[1];
        pending = pending.slice(end + 4);
        void answer(socket, path);
      }
    });
  };
  const server = tlsPair
    ? tls.createServer({ key: tlsPair.key, cert: tlsPair.cert }, onSocket)
    : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    addr: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const tick = () => new Promise((r) => setImmediate(r));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function answer(socket: Socket, path: string): Promise<void> {
  if (path === '/split') {
    const head = 'HTTP/1.1 200 OK\r\nX-First: one\r\nX-Second: two\r\nContent-Length: 5\r\n\r\n';
    socket.write(head.slice(0, 20));
    await pause(30);
    socket.write(head.slice(20, 40));
    await pause(30);
    socket.write(`${head.slice(40)}he`);
    await pause(30);
    socket.write('llo');
    return;
  }
  const [, len, seed, framing] = path.split('/');
  const body = bodyOf(Number(len), Number(seed));
  const chunked = framing === 'chunked';
  socket.write(
    `HTTP/1.1 200 OK\r\nContent-Type: application/x-test\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`}\r\n\r\n`,
  );
  const piece = Math.max(1, Math.ceil(body.length / 4));
  for (let at = 0; at < body.length; at += piece) {
    const part = body.subarray(at, at + piece);
    socket.write(
      chunked
        ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')])
        : part,
    );
    await tick();
  }
  if (chunked) socket.write('0\r\n\r\n');
}

function fetch(
  port: number,
  path: string,
  gzip: boolean,
  readAfterMs = 0,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = gzip ? { 'Accept-Encoding': 'gzip' } : {};
    http
      .get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        // A slow reader: the proxy must hold (and pause) this exchange while others read into the shared buffer.
        if (readAfterMs > 0) {
          res.pause();
          setTimeout(() => res.resume(), readAfterMs);
        }
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
        );
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const LENGTHS = [0, 1, 100, 5000, 8192, 8193, 16384, 70_000, 131_072, 200_000, 262_144, 262_145, 400_000];

describe('proxy h1 client: reused read and body buffers', () => {
  let up: { addr: string; close(): Promise<void> };
  let plain: Site;
  let gzipped: Site;
  before(async () => {
    up = await upstream();
    plain = await startSite(`127.0.0.1:0 {\nproxy / ${up.addr} {\n keepalive 4\n}\n}\n`);
    gzipped = await startSite(`127.0.0.1:0 {\ngzip {\n ext *\n}\nproxy / ${up.addr} {\n keepalive 4\n}\n}\n`);
  });
  after(async () => {
    await plain.stop();
    await gzipped.stop();
    await up.close();
  });

  for (const gzip of [false, true]) {
    test(`every size and framing, 3 rounds of ${LENGTHS.length * 2} at once, each body whole${gzip ? ', gzipped' : ''}`, async () => {
      const port = gzip ? gzipped.port : plain.port;
      for (let round = 0; round < 3; round++) {
        const cases = LENGTHS.flatMap((length, i) =>
          (['cl', 'chunked'] as const).map((framing, j) => ({
            length,
            framing,
            seed: round * 100 + i * 2 + j,
          })),
        );
        const results = await Promise.all(
          cases.map((c) => fetch(port, `/${c.length}/${c.seed}/${c.framing}`, gzip)),
        );
        results.forEach((r, i) => {
          const c = cases[i];
          const what = `${c.length} bytes ${c.framing}, seed ${c.seed}`;
          assert.equal(r.status, 200, what);
          const compressed = r.headers['content-encoding'] === 'gzip';
          if (gzip && c.length > 0) assert.ok(compressed, `${what}: compressed`);
          const body = compressed ? zlib.gunzipSync(r.body) : r.body;
          assert.equal(body.length, c.length, what);
          assert.equal(sha(body), sha(bodyOf(c.length, c.seed)), what);
        });
      }
    });
  }

  test('bytes never cross between concurrent exchanges: plain and TLS upstreams, slow and fast readers', async () => {
    const { dir, cleanup } = tempDir();
    const pair = selfSigned(dir, 'upstream', ['127.0.0.1']);
    const tlsUp = await upstream(pair);
    const tlsSite = await startSite(
      `127.0.0.1:0 {\nproxy / https://${tlsUp.addr} {\n keepalive 4\n insecure_skip_verify\n}\n}\n`,
    );
    try {
      // Slow readers get bodies larger than the kernel's socket buffers, so that our writes to them wait in
      // Node's queue while the other exchanges read into the shared buffer.
      const sizes = [1, 5000, 70_000, 262_145, 600_000];
      const cases = Array.from({ length: 60 }, (_, i) => ({
        port: i % 2 === 0 ? plain.port : tlsSite.port,
        length: i % 4 === 0 ? 12_000_000 : sizes[i % sizes.length],
        framing: i % 3 === 0 ? 'chunked' : 'cl',
        seed: 1000 + i,
        readAfterMs: i % 4 === 0 ? 100 : 0,
      }));
      const results = await Promise.all(
        cases.map((c) => fetch(c.port, `/${c.length}/${c.seed}/${c.framing}`, false, c.readAfterMs)),
      );
      results.forEach((r, i) => {
        const c = cases[i];
        const what = `${c.port === plain.port ? 'plain' : 'tls'} ${c.length} ${c.framing} seed ${c.seed}`;
        assert.equal(r.status, 200, what);
        assert.equal(r.body.length, c.length, what);
        assert.equal(sha(r.body), sha(bodyOf(c.length, c.seed)), what);
      });
    } finally {
      await tlsSite.stop();
      await tlsUp.close();
      cleanup();
    }
  });

  test('a response head that arrives in parts, apart in time, is read whole', async () => {
    const r = await fetch(plain.port, '/split', false);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-first'], 'one');
    assert.equal(r.headers['x-second'], 'two');
    assert.equal(r.body.toString(), 'hello');
  });
});
