// gzip on responses written by a backend-like handler inside the chain (as proxy, fastcgi and tunnel write):
// explicit writeHead, validators, statuses that carry no body, event streams, and backpressure.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { defineDirective } from '../../src/core/directive.js';
import { startInProcess, type InProcess } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';
import { getRaw } from '../helpers/raw.js';

const TEXT = 'backend text '.repeat(500);

/** Compressible text of `length` bytes that differs with `seed` (a mixed-up body would not decode to it). */
function textOf(length: number, seed: number): Buffer {
  let s = '';
  for (let i = 0; s.length < length; i++) s += `line ${i} of body ${seed}\n`;
  return Buffer.from(s.slice(0, length));
}
const PRECOMPRESSED = zlib.gzipSync(TEXT);
const BIG = 50 * 1024 * 1024;

/** Signals from the test to the event-stream handler: resolve to let it send its next event. */
let nextEvent: (() => void) | undefined;
let eventsSent = 0;
/** Bytes the big-body handler has managed to write so far. */
let produced = 0;
let producedHash = createHash('sha256');

const backend = defineDirective<null>({
  name: 'testbackend',
  setup(d) {
    while (d.next());
    return null;
  },
  build() {
    return {
      middleware: () => async (ctx) => {
        const { res } = ctx;
        const parts = /^\/parts\/(\d+)\/(\d+)(?:\/(\w+))?$/.exec(ctx.path);
        if (parts) {
          // A body of known length written in pieces over several turns of the event loop; `lying` announces
          // 1000 bytes whatever it writes, `flush` flushes the headers after the first piece.
          const body = textOf(Number(parts[1]), Number(parts[2]));
          const how = parts[3];
          res.writeHead(200, {
            'Content-Type': 'text/plain',
            'Content-Length': String(how === 'lying' ? 1000 : body.length),
          });
          const piece = Math.ceil(body.length / 4);
          for (let at = 0; at < body.length; at += piece) {
            res.write(body.subarray(at, at + piece));
            if (at === 0 && how === 'flush') res.flushHeaders();
            await new Promise((r) => setImmediate(r));
          }
          res.end();
          return;
        }
        switch (ctx.path) {
          case '/writehead.txt':
            res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(TEXT.length) });
            res.end(TEXT);
            return;
          case '/etag.txt':
            res.setHeader('ETag', '"v1"');
            res.setHeader('Content-Type', 'text/plain');
            res.end(TEXT);
            return;
          case '/weak.txt':
            res.setHeader('ETag', 'W/"v1"');
            res.end(TEXT);
            return;
          case '/304.txt':
            res.writeHead(304, { ETag: '"v1"' });
            res.end();
            return;
          case '/204.txt':
            res.writeHead(204);
            res.end();
            return;
          case '/206.txt':
            res.writeHead(206, { 'Content-Range': `bytes 0-9/${TEXT.length}`, 'Content-Length': '10' });
            res.end(TEXT.slice(0, 10));
            return;
          case '/encoded.txt':
            res.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Type': 'text/plain' });
            res.end(PRECOMPRESSED);
            return;
          case '/zstd.txt':
            res.writeHead(200, { 'Content-Encoding': 'zstd', 'Content-Type': 'text/plain' });
            res.end('not really zstd');
            return;
          case '/notransform.txt':
            res.writeHead(200, { 'Cache-Control': 'public, no-transform' });
            res.end(TEXT);
            return;
          case '/video':
            res.writeHead(200, { 'Content-Type': 'video/mp4' });
            res.end(TEXT);
            return;
          case '/events': {
            res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
            for (let i = 1; i <= 3; i++) {
              await new Promise<void>((r) => (nextEvent = r));
              res.write(`data: event ${i}\n\n`);
              eventsSent = i;
            }
            res.end();
            return;
          }
          case '/flushed': {
            // Not an event stream, but the producer flushed its headers and writes in bits over time.
            res.setHeader('Content-Type', 'text/plain');
            res.flushHeaders();
            for (let i = 1; i <= 2; i++) {
              await new Promise<void>((r) => (nextEvent = r));
              res.write(`line ${i}\n`);
              eventsSent = i;
            }
            res.end();
            return;
          }
          case '/big.txt': {
            res.setHeader('Content-Type', 'text/plain');
            // Random bytes: gzip cannot shrink them, so the compressed stream is as large as the input and
            // a paused reader really backs up the socket.
            producedHash = createHash('sha256');
            while (produced < BIG) {
              const piece = randomBytes(Math.min(64 * 1024, BIG - produced));
              produced += piece.length;
              producedHash.update(piece);
              if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
              if (res.destroyed) return;
            }
            res.end();
            return;
          }
        }
        ctx.res.statusCode = 404;
        ctx.res.end('no such test path');
      },
    };
  },
});

let dir: string;
let cleanup: () => void;
let server: InProcess;

before(async () => {
  ({ dir, cleanup } = tempDir());
  server = await startInProcess('127.0.0.1:0 {\n\tgzip {\n\t\text *\n\t}\n\ttestbackend\n}\n', dir, [
    backend,
  ]);
});
after(async () => {
  await server?.stop();
  cleanup?.();
});

const get = (p: string, ae = 'gzip') => getRaw(server.port, p, { 'Accept-Encoding': ae });

describe('gzip on backend responses', () => {
  test('writeHead with Content-Length: the length goes, the body is compressed', async () => {
    const r = await get('/writehead.txt');
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.text, TEXT);
  });

  test('a strong ETag is made weak; a weak one stays', async () => {
    assert.equal((await get('/etag.txt')).headers.etag, 'W/"v1"');
    assert.equal((await get('/etag.txt', 'br')).headers.etag, 'W/"v1"');
    assert.equal((await get('/etag.txt', 'identity')).headers.etag, '"v1"');
    assert.equal((await get('/weak.txt')).headers.etag, 'W/"v1"');
  });

  test('304 keeps no body, gets Vary and the same weak validator; 204 and 206 pass untouched', async () => {
    const nm = await get('/304.txt');
    assert.equal(nm.status, 304);
    assert.equal(nm.headers['content-encoding'], undefined);
    assert.equal(nm.headers.etag, 'W/"v1"');
    assert.equal(nm.headers.vary, 'Accept-Encoding');
    const nc = await get('/204.txt');
    assert.equal(nc.status, 204);
    assert.equal(nc.headers['content-encoding'], undefined);
    const part = await get('/206.txt');
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-encoding'], undefined);
    assert.equal(part.headers['content-length'], '10');
    assert.equal(part.text, TEXT.slice(0, 10));
  });

  test('never twice: a response that already has a Content-Encoding (gzip, zstd) passes as is', async () => {
    const r = await get('/encoded.txt');
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.deepEqual(r.raw, PRECOMPRESSED);
    // Not decoded: the body is not zstd at all, and must reach the client byte for byte.
    const z = await new Promise<{ headers: http.IncomingHttpHeaders; raw: Buffer }>((resolve, reject) => {
      const opts = { host: '127.0.0.1', port: server.port, path: '/zstd.txt', agent: false };
      http
        .get({ ...opts, headers: { 'Accept-Encoding': 'gzip, zstd' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, raw: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
    assert.equal(z.headers['content-encoding'], 'zstd');
    assert.equal(z.raw.toString(), 'not really zstd');
  });

  test('Cache-Control: no-transform and video types are left alone', async () => {
    for (const p of ['/notransform.txt', '/video']) {
      const r = await get(p);
      assert.equal(r.headers['content-encoding'], undefined, p);
      assert.equal(r.raw.toString(), TEXT, p);
    }
  });
});

/** Opens a streaming request and yields decompressed text as it arrives. */
function openStream(p: string, ae: string) {
  let text = '';
  let headers: http.IncomingHttpHeaders = {};
  let ended = false;
  const req = http.get({ host: '127.0.0.1', port: server.port, path: p, headers: { 'Accept-Encoding': ae } });
  req.on('response', (res) => {
    headers = res.headers;
    const dec = ae === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
    res.pipe(dec);
    dec.setEncoding('utf8');
    dec.on('data', (s: string) => (text += s));
    dec.on('end', () => (ended = true));
  });
  return {
    text: () => text,
    headers: () => headers,
    ended: () => ended,
    close: () => req.destroy(),
  };
}

describe('gzip on bodies of known length written in parts', () => {
  // Up to 256 KB they are collected and compressed whole (one compressor from a small shared pool); beyond,
  // or once more arrives than announced, or once the producer flushes, they are streamed.
  for (const [path, what] of [
    ['/parts/100000/1', 'under 256 KB'],
    ['/parts/300000/2', 'over 256 KB'],
    ['/parts/300000/3/lying', 'more than its Content-Length said'],
    ['/parts/50000/4/flush', 'flushed after the first piece'],
  ]) {
    test(`${what}: compressed, decodes to the body`, async () => {
      const r = await get(path);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.headers['content-length'], undefined);
      const [, length, seed] = path.split('/').slice(1);
      assert.equal(r.text, textOf(Number(length), Number(seed)).toString());
    });
  }

  test('60 at once (more than the compressors pooled): each decodes to its own body', async () => {
    const lengths = Array.from({ length: 60 }, (_, i) => 1000 + ((i * 7919) % 200_000));
    const all = await Promise.all(lengths.map((n, i) => get(`/parts/${n}/${i + 10}`)));
    all.forEach((r, i) => {
      assert.equal(r.headers['content-encoding'], 'gzip', `response ${i}`);
      assert.equal(r.text, textOf(lengths[i], i + 10).toString(), `response ${i}`);
    });
  });
});

describe('gzip on streams', () => {
  for (const ae of ['gzip', 'br']) {
    test(`${ae}: an event stream arrives event by event, decompressed, before the next is sent`, async () => {
      eventsSent = 0;
      nextEvent = undefined;
      const s = openStream('/events', ae);
      try {
        for (let i = 1; i <= 3; i++) {
          await waitFor(() => nextEvent, 10_000, `handler waiting for event ${i}`);
          const go = nextEvent!;
          nextEvent = undefined;
          go();
          await waitFor(() => s.text().includes(`data: event ${i}\n\n`), 10_000, `event ${i} at the client`);
          assert.equal(eventsSent, i, 'the client has it before the next one is even written');
        }
        assert.equal(s.headers()['content-encoding'], ae);
        assert.equal(s.headers()['content-type'], 'text/event-stream');
        await waitFor(() => s.ended(), 10_000, 'end of stream');
        assert.equal(s.text(), 'data: event 1\n\ndata: event 2\n\ndata: event 3\n\n');
      } finally {
        s.close();
      }
    });
  }

  test('a producer that flushed its headers gets each small write through at once', async () => {
    eventsSent = 0;
    nextEvent = undefined;
    const s = openStream('/flushed', 'gzip');
    try {
      for (let i = 1; i <= 2; i++) {
        await waitFor(() => nextEvent, 10_000, `handler waiting for write ${i}`);
        const go = nextEvent!;
        nextEvent = undefined;
        go();
        await waitFor(() => s.text().includes(`line ${i}\n`), 10_000, `line ${i} at the client`);
      }
      await waitFor(() => s.ended(), 10_000, 'end');
      assert.equal(s.text(), 'line 1\nline 2\n');
    } finally {
      s.close();
    }
  });

  test('backpressure: 50 MB to a paused reader is not buffered; then it all arrives intact', async () => {
    produced = 0;
    const expected = createHash('sha256');
    const req = http.get({
      host: '127.0.0.1',
      port: server.port,
      path: '/big.txt',
      headers: { 'Accept-Encoding': 'gzip' },
    });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
    });
    assert.equal(res.headers['content-encoding'], 'gzip');
    res.pause();
    // Let the pipes fill up, then check that production stalled far below 50 MB.
    let last = -1;
    let stable = 0;
    await waitFor(
      () => {
        if (produced === last) stable++;
        else [last, stable] = [produced, 0];
        return stable >= 20; // unchanged for 20 polls (~0.5 s)
      },
      30_000,
      'production to stall behind the paused reader',
    );
    assert.ok(produced < 16 * 1024 * 1024, `only ${produced} bytes produced while the reader is paused`);
    const gunzip = zlib.createGunzip();
    let total = 0;
    gunzip.on('data', (c: Buffer) => {
      total += c.length;
      expected.update(c);
    });
    res.pipe(gunzip);
    await new Promise((resolve, reject) => gunzip.on('end', resolve).on('error', reject));
    assert.equal(total, BIG);
    assert.equal(produced, BIG);
    assert.equal(expected.digest('hex'), producedHash.digest('hex'), 'the bytes the handler wrote, in order');
  });
});
