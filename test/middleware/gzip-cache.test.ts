// Compressed copies of cached file bodies (core/files/derived.ts, kept by the gzip directive): the same
// answers as compressing each time, never stale, encodings and levels apart, only for the file cache's own
// bodies, and charged to the cache's memory budget.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileCache } from '../../src/core/files/cache.js';
import { derivedOf, isCachedBody, keepDerived } from '../../src/core/files/derived.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { getRaw } from '../helpers/raw.js';

let dir: string;
let www: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;
let backend: http.Server;
let backendHits = 0;

const page = (tag: string) => `<!doctype html><p>${tag}: ${'compress me, please; '.repeat(600)}</p>\n`;
const WORDS = Array.from({ length: 4000 }, (_, i) => `w${(i * 7919) % 1543} ${i % 97}`).join(' ');

before(async () => {
  ({ dir, cleanup } = tempDir());
  www = path.join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(path.join(www, 'page.html'), page('first'));
  writeFileSync(path.join(www, 'change.html'), page('v0'));
  writeFileSync(path.join(www, 'words.txt'), WORDS);
  // A backend whose body differs on every request (same length): a proxied body must never be reused.
  backend = http.createServer((_req, res) => {
    const body = page(`proxied ${String(++backendHits).padStart(6, '0')}`);
    res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendPort = (backend.address() as AddressInfo).port;
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `http://c.test:0 {
  root www
  gzip
}
http://l1.test:0 {
  root www
  gzip {
    level 1
  }
}
http://l9.test:0 {
  root www
  gzip {
    level 9
  }
}
http://p.test:0 {
  gzip
  proxy / 127.0.0.1:${backendPort}
}
`,
  );
  // One worker: every request meets the same file cache.
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1'], { cwd: dir });
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  await new Promise((resolve) => backend?.close(resolve));
  cleanup?.();
});

const get = (host: string, p: string, headers: Record<string, string> = {}, method = 'GET') =>
  getRaw(port, p, { Host: host, 'Accept-Encoding': 'gzip', ...headers }, method);

describe('gzip: compressed copies of cached files', () => {
  test('a second request gets the same bytes and the same headers as the first', async () => {
    const first = await get('c.test', '/page.html');
    for (let i = 0; i < 3; i++) {
      const again = await get('c.test', '/page.html');
      assert.equal(again.status, 200);
      assert.equal(again.text, page('first'));
      assert.deepEqual(again.raw, first.raw);
      for (const h of ['content-encoding', 'vary', 'etag', 'content-length', 'content-type', 'last-modified'])
        assert.equal(again.headers[h], first.headers[h], h);
    }
    assert.equal(first.headers['content-encoding'], 'gzip');
    assert.equal(first.headers.vary, 'Accept-Encoding');
    assert.match(String(first.headers.etag), /^W\/"/);
    assert.equal(first.headers['content-length'], undefined);
  });

  test('a changed file is served new at once, compressed (same length, then another length)', async () => {
    assert.equal((await get('c.test', '/change.html')).text, page('v0'));
    for (const tag of ['v1', 'v2', 'a longer version 3']) {
      writeFileSync(path.join(www, 'change.html'), page(tag));
      const r = await get('c.test', '/change.html');
      assert.equal(r.headers['content-encoding'], 'gzip', tag);
      assert.equal(r.text, page(tag));
      assert.equal((await get('c.test', '/change.html')).text, page(tag), `${tag}, again`);
    }
  });

  test('gzip and brotli copies are kept apart', async () => {
    const raws = new Map<string, Buffer>();
    for (const ae of ['gzip', 'br', 'gzip', 'br']) {
      const r = await get('c.test', '/page.html', { 'Accept-Encoding': ae });
      assert.equal(r.headers['content-encoding'], ae);
      assert.equal(r.text, page('first'), ae); // decoded by its own header's coding
      if (raws.has(ae)) assert.deepEqual(r.raw, raws.get(ae));
      raws.set(ae, r.raw);
    }
    assert.notDeepEqual(raws.get('gzip'), raws.get('br'));
  });

  test('levels are kept apart (two sites, one root, one cached body)', async () => {
    const fast = await get('l1.test', '/words.txt');
    const best = await get('l9.test', '/words.txt');
    const fastAgain = await get('l1.test', '/words.txt');
    assert.equal(best.text, WORDS);
    assert.ok(best.raw.length < fast.raw.length, `level 9 ${best.raw.length} < level 1 ${fast.raw.length}`);
    assert.deepEqual(fastAgain.raw, fast.raw);
  });

  test('ranges, HEAD and 304 are unaffected once a copy is kept', async () => {
    const full = await get('c.test', '/page.html');
    const range = await get('c.test', '/page.html', { Range: 'bytes=0-9' });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-encoding'], undefined);
    assert.equal(range.raw.toString(), page('first').slice(0, 10));
    const head = await get('c.test', '/page.html', {}, 'HEAD');
    assert.equal(head.headers['content-encoding'], undefined);
    assert.equal(head.headers['content-length'], String(page('first').length));
    assert.equal(head.raw.length, 0);
    const notModified = await get('c.test', '/page.html', { 'If-None-Match': String(full.headers.etag) });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, full.headers.etag);
    assert.equal(notModified.headers.vary, 'Accept-Encoding');
  });

  test('a proxied body is compressed every time, never answered from a kept copy', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await get('p.test', '/');
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.match(r.text, /^<!doctype html><p>proxied \d{6}: /);
      seen.add(r.text);
    }
    assert.equal(seen.size, 3);
  });
});

describe('derived copies and the file cache', () => {
  test('kept while the body is cached, dropped with it, charged to the budget', async () => {
    const { dir: root, cleanup: done } = tempDir();
    const cache = new FileCache(root);
    try {
      const file = path.join(root, 'a.txt');
      writeFileSync(file, 'hello');
      const info = await cache.load(file);
      assert.ok(info);
      const body = await cache.body(info);
      assert.ok(body && isCachedBody(body));
      assert.equal(isCachedBody(Buffer.from('hello')), false);
      assert.equal(keepDerived(Buffer.from('hello'), 'gzip/6', Buffer.from('x')), false);

      // The budget (64 MiB, bodies included) takes one big copy, not two.
      const big = Buffer.alloc(40 * 1024 * 1024);
      assert.equal(keepDerived(body, 'gzip/6', big), true);
      assert.equal(derivedOf(body, 'gzip/6'), big);
      assert.equal(derivedOf(body, 'br/6'), undefined);
      assert.equal(keepDerived(body, 'br/6', big), false);

      // A change drops the body and its copies, and gives their bytes back to the budget.
      cache.changed(file, false);
      assert.equal(cache.peek(file), undefined);
      assert.equal(isCachedBody(body), false);
      assert.equal(derivedOf(body, 'gzip/6'), undefined);
      assert.equal(keepDerived(body, 'gzip/6', Buffer.from('x')), false);

      const info2 = await cache.load(file);
      assert.ok(info2);
      const body2 = await cache.body(info2);
      assert.ok(body2 && body2 !== body && isCachedBody(body2));
      assert.equal(keepDerived(body2, 'gzip/6', big), true);
    } finally {
      cache.clear();
      done();
    }
  });
});
