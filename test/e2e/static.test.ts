// The file server through the real nodecaddy process: redirects, types, validators, conditional requests,
// ranges, precompressed sidecars, and a cache that serves a changed file new at once.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let root: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;
const BIG = 3 * 1024 * 1024 + 17; // streamed, not cached

function bigContent(): Buffer {
  const b = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
  return b;
}

before(async () => {
  ({ dir, cleanup } = tempDir());
  root = path.join(dir, 'site');
  const files: Record<string, string | Buffer> = {
    'hello.txt': 'hello world',
    'digits.txt': '0123456789',
    'page.html': '<p>page</p>',
    'app.js': 'let x = 1;',
    'data.json': '{"a":1}',
    'image.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    'sub/index.html': 'sub index',
    'nosub/a.txt': 'a',
    'style.css': 'body{}',
    'style.css.gz': 'GZ-BYTES',
    'style.css.br': 'BR-BYTES',
    'only.txt': 'plain',
    'only.txt.zst': 'ZSTD-BYTES',
    'big.bin': bigContent(),
    'empty.txt': '',
  };
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), body);
  }
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(conf, `127.0.0.1:0 {\n\troot ${root}\n}\n`);
  nc = await startNodecaddy(['-conf', conf]);
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const get = (p: string, headers: Record<string, string> = {}, method = 'GET') =>
  request(port, p, { headers, method });

/** Streams a response and returns status, headers and the SHA-256 of the body. */
function getHashed(p: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; sha: string; length: number }>(
    (resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: p, headers, agent: false }, (res) => {
          const hash = createHash('sha256');
          let length = 0;
          res.on('data', (c: Buffer) => {
            hash.update(c);
            length += c.length;
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, sha: hash.digest('hex'), length }),
          );
          res.on('error', reject);
        })
        .on('error', reject);
    },
  );
}

describe('file server', () => {
  test('types with charset for text, octet-stream for unknown, HEAD without a body', async () => {
    const cases: [string, string][] = [
      ['/hello.txt', 'text/plain; charset=utf-8'],
      ['/page.html', 'text/html; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/data.json', 'application/json; charset=utf-8'],
      ['/image.png', 'image/png'],
    ];
    for (const [p, type] of cases) assert.equal((await get(p)).headers['content-type'], type, p);
    const head = await get('/hello.txt', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '11');
    assert.equal(head.body, '');
    const empty = await get('/empty.txt');
    assert.equal(empty.status, 200);
    assert.equal(empty.headers['content-length'], '0');
    assert.equal((await get('/hello.txt', {}, 'POST')).status, 405);
  });

  test('redirects: slash added to a directory, removed from a file, explicit index stripped', async () => {
    const cases: [string, string][] = [
      ['/sub', '/sub/'],
      ['/sub?x=1', '/sub/?x=1'],
      ['/hello.txt/', '/hello.txt'],
      ['/hello.txt/?q', '/hello.txt?q'],
      ['/sub/index.html', '/sub/'],
      ['//sub', '/sub/'],
    ];
    for (const [from, to] of cases) {
      const res = await get(from);
      assert.equal(res.status, 301, from);
      assert.equal(res.headers.location, to, from);
    }
    assert.equal((await get('/sub/')).body, 'sub index');
    assert.equal((await get('/nosub/')).status, 404);
  });

  test('ETag and Last-Modified; If-None-Match and If-Modified-Since give 304', async () => {
    const first = await get('/hello.txt');
    const etag = String(first.headers.etag);
    const lastModified = String(first.headers['last-modified']);
    assert.match(etag, /^"[0-9a-z]+-[0-9a-z]+"$/);
    assert.ok(!Number.isNaN(Date.parse(lastModified)));
    for (const h of <Record<string, string>[]>[
      { 'If-None-Match': etag },
      { 'If-None-Match': `"nope", W/${etag}` },
      { 'If-None-Match': '*' },
      { 'If-Modified-Since': lastModified },
      { 'If-Modified-Since': new Date(Date.parse(lastModified) + 60_000).toUTCString() },
    ]) {
      const res = await get('/hello.txt', h);
      assert.equal(res.status, 304, JSON.stringify(h));
      assert.equal(res.body, '');
      assert.equal(res.headers.etag, etag);
    }
    for (const h of <Record<string, string>[]>[
      { 'If-None-Match': '"other"' },
      { 'If-Modified-Since': new Date(Date.parse(lastModified) - 60_000).toUTCString() },
      { 'If-Modified-Since': 'not a date' },
      // If-None-Match wins over If-Modified-Since
      { 'If-None-Match': '"other"', 'If-Modified-Since': lastModified },
    ]) {
      const res = await get('/hello.txt', h);
      assert.equal(res.status, 200, JSON.stringify(h));
      assert.equal(res.body, 'hello world');
    }
  });

  test('If-Match and If-Unmodified-Since give 412', async () => {
    const { headers } = await get('/hello.txt');
    const etag = String(headers.etag);
    const lm = String(headers['last-modified']);
    assert.equal((await get('/hello.txt', { 'If-Match': '"other"' })).status, 412);
    assert.equal((await get('/hello.txt', { 'If-Match': `W/${etag}` })).status, 412);
    assert.equal((await get('/hello.txt', { 'If-Match': etag })).status, 200);
    assert.equal((await get('/hello.txt', { 'If-Match': '*' })).status, 200);
    const before = new Date(Date.parse(lm) - 60_000).toUTCString();
    assert.equal((await get('/hello.txt', { 'If-Unmodified-Since': before })).status, 412);
    assert.equal((await get('/hello.txt', { 'If-Unmodified-Since': lm })).status, 200);
  });

  test('single ranges, suffix ranges, open ranges, 416', async () => {
    const cases: [string, string, string][] = [
      ['bytes=0-3', '0123', 'bytes 0-3/10'],
      ['bytes=7-', '789', 'bytes 7-9/10'],
      ['bytes=-2', '89', 'bytes 8-9/10'],
      ['bytes=5-100', '56789', 'bytes 5-9/10'],
      ['bytes=-50', '0123456789', 'bytes 0-9/10'],
      ['bytes=20-30, 2-2', '2', 'bytes 2-2/10'],
    ];
    for (const [range, body, cr] of cases) {
      const res = await get('/digits.txt', { Range: range });
      assert.equal(res.status, 206, range);
      assert.equal(res.body, body, range);
      assert.equal(res.headers['content-range'], cr, range);
      assert.equal(res.headers['content-length'], String(body.length));
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    }
    for (const range of ['bytes=10-', 'bytes=50-60', 'bytes=-0', 'bytes=99999999999999999999-']) {
      const res = await get('/digits.txt', { Range: range });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers['content-range'], 'bytes */10', range);
    }
    // Malformed or absurd: ignored, the whole file.
    for (const range of [
      'bytes=5-2',
      'bytes=abc',
      'items=0-1',
      'bytes=-',
      'bytes=0-1,' + '2-3,'.repeat(40) + '4-5',
      'bytes=0-9,0-9',
      'bytes=' + '9'.repeat(3000),
      'bytes=0--1',
    ]) {
      const res = await get('/digits.txt', { Range: range });
      assert.equal(res.status, 200, range);
      assert.equal(res.body, '0123456789');
    }
  });

  test('multiple ranges are multipart/byteranges', async () => {
    const res = await get('/digits.txt', { Range: 'bytes=0-1,5-6,-1' });
    assert.equal(res.status, 206);
    const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(String(res.headers['content-type']));
    assert.ok(m, String(res.headers['content-type']));
    const b = m[1];
    const part = (cr: string, data: string) =>
      `--${b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes ${cr}/10\r\n\r\n${data}`;
    const expected = `${part('0-1', '01')}\r\n${part('5-6', '56')}\r\n${part('9-9', '9')}\r\n--${b}--\r\n`;
    assert.equal(res.body, expected);
    assert.equal(res.headers['content-length'], String(Buffer.byteLength(expected)));
    // And from a streamed (big) file.
    const big = bigContent();
    const r2 = await request(port, '/big.bin', { headers: { Range: 'bytes=1-2,3000000-3000001' } });
    assert.equal(r2.status, 206);
    assert.ok(r2.body.includes('Content-Range: bytes 3000000-3000001/' + BIG));
    const raw = await new Promise<Buffer>((resolve, reject) => {
      http
        .get(
          { port, host: '127.0.0.1', path: '/big.bin', headers: { Range: 'bytes=1-2,3000000-3000001' } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks)));
          },
        )
        .on('error', reject);
    });
    assert.ok(
      raw.includes(
        Buffer.concat([Buffer.from('\r\n\r\n'), big.subarray(3000000, 3000002), Buffer.from('\r\n--')]),
      ),
    );
  });

  test('If-Range: a matching validator keeps the range, a stale one gets the whole file', async () => {
    const { headers } = await get('/digits.txt');
    const ok = await get('/digits.txt', { Range: 'bytes=0-0', 'If-Range': String(headers.etag) });
    assert.equal(ok.status, 206);
    assert.equal(ok.body, '0');
    const byDate = await get('/digits.txt', {
      Range: 'bytes=0-0',
      'If-Range': String(headers['last-modified']),
    });
    assert.equal(byDate.status, 206);
    const stale = await get('/digits.txt', { Range: 'bytes=0-0', 'If-Range': '"old"' });
    assert.equal(stale.status, 200);
    assert.equal(stale.body, '0123456789');
  });

  test('big files stream whole and in ranges', async () => {
    const big = bigContent();
    const whole = await getHashed('/big.bin');
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-length'], String(BIG));
    assert.equal(whole.sha, createHash('sha256').update(big).digest('hex'));
    const part = await getHashed('/big.bin', { Range: 'bytes=1000000-2000000' });
    assert.equal(part.status, 206);
    assert.equal(part.length, 1000001);
    assert.equal(part.sha, createHash('sha256').update(big.subarray(1000000, 2000001)).digest('hex'));
  });

  test('precompressed sidecars by Accept-Encoding with q-values', async () => {
    const cases: [string | undefined, string, string | undefined][] = [
      [undefined, 'body{}', undefined],
      ['gzip', 'GZ-BYTES', 'gzip'],
      ['gzip, deflate, br', 'BR-BYTES', 'br'],
      ['br;q=0.5, gzip;q=0.9', 'GZ-BYTES', 'gzip'],
      ['gzip;q=1.0', 'GZ-BYTES', 'gzip'],
      ['br;q=0, gzip;q=0', 'body{}', undefined],
      ['*', 'BR-BYTES', 'br'],
      ['identity', 'body{}', undefined],
      ['deflate', 'body{}', undefined],
    ];
    for (const [ae, body, encoding] of cases) {
      const res = await get('/style.css', ae === undefined ? {} : { 'Accept-Encoding': ae });
      assert.equal(res.status, 200, ae);
      assert.equal(res.body, body, ae);
      assert.equal(res.headers['content-encoding'], encoding, ae);
      assert.equal(res.headers['content-type'], 'text/css; charset=utf-8', ae);
      assert.equal(res.headers.vary, 'Accept-Encoding', ae);
      assert.equal(res.headers['content-length'], String(body.length));
    }
    const zst = await get('/only.txt', { 'Accept-Encoding': 'gzip, zstd' });
    assert.equal(zst.body, 'ZSTD-BYTES');
    assert.equal(zst.headers['content-encoding'], 'zstd');
    assert.equal(zst.headers['content-type'], 'text/plain; charset=utf-8');
    // A file without sidecars does not vary.
    assert.equal((await get('/hello.txt', { 'Accept-Encoding': 'gzip' })).headers.vary, undefined);
    // Each representation has its own validator.
    const plain = await get('/style.css');
    const gz = await get('/style.css', { 'Accept-Encoding': 'gzip' });
    assert.notEqual(plain.headers.etag, gz.headers.etag);
  });

  test('a changed file is served new at once; created and deleted files too', async () => {
    const file = path.join(root, 'live.txt');
    assert.equal((await get('/live.txt')).status, 404);
    for (let i = 0; i < 20; i++) {
      // Same size every time, within the same second: only a real invalidation tells them apart.
      const body = `version-${String(i).padStart(3, '0')}`;
      writeFileSync(file, body);
      const res = await get('/live.txt');
      assert.equal(res.status, 200, `round ${i}`);
      assert.equal(res.body, body, `round ${i}`);
    }
    unlinkSync(file);
    assert.equal((await get('/live.txt')).status, 404);
    // Replaced by rename (how editors and deploys write), in a directory created just now.
    mkdirSync(path.join(root, 'fresh'));
    writeFileSync(path.join(root, 'fresh', 'tmp'), 'one');
    renameSync(path.join(root, 'fresh', 'tmp'), path.join(root, 'fresh', 'f.txt'));
    assert.equal((await get('/fresh/f.txt')).body, 'one');
    writeFileSync(path.join(root, 'fresh', 'tmp'), 'two');
    renameSync(path.join(root, 'fresh', 'tmp'), path.join(root, 'fresh', 'f.txt'));
    assert.equal((await get('/fresh/f.txt')).body, 'two');
    // A directory renamed away and another put in its place.
    renameSync(path.join(root, 'fresh'), path.join(root, 'gone'));
    assert.equal((await get('/fresh/f.txt')).status, 404);
    assert.equal((await get('/gone/f.txt')).body, 'two');
    mkdirSync(path.join(root, 'fresh'));
    writeFileSync(path.join(root, 'fresh', 'f.txt'), 'three');
    assert.equal((await get('/fresh/f.txt')).body, 'three');
    rmSync(path.join(root, 'fresh'), { recursive: true });
    assert.equal((await get('/fresh/f.txt')).status, 404);
    // A sidecar that appears is used at once.
    writeFileSync(path.join(root, 'hello.txt.gz'), 'HELLO-GZ');
    assert.equal((await get('/hello.txt', { 'Accept-Encoding': 'gzip' })).body, 'HELLO-GZ');
    unlinkSync(path.join(root, 'hello.txt.gz'));
    assert.equal((await get('/hello.txt', { 'Accept-Encoding': 'gzip' })).body, 'hello world');
  });

  test('a symlink inside root is followed and its target watched', async () => {
    mkdirSync(path.join(root, 'real'));
    writeFileSync(path.join(root, 'real', 't.txt'), 'target one');
    symlinkSync(path.join(root, 'real'), path.join(root, 'linkdir'));
    assert.equal((await get('/linkdir/t.txt')).body, 'target one');
    writeFileSync(path.join(root, 'real', 't.txt'), 'target two');
    assert.equal((await get('/linkdir/t.txt')).body, 'target two');
  });
});
