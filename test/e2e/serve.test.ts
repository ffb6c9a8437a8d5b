// Routing and the static end of the chain, through the real nodecaddy process.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rawRequest, request } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let portA: number;
let portB: number;

function site(name: string, files: Record<string, string>): string {
  const root = path.join(dir, name);
  for (const [file, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), body);
  }
  return root;
}

before(async () => {
  ({ dir, cleanup } = tempDir());
  const exact = site('exact', {
    'index.html': 'exact',
    'sub/index.html': 'exact sub',
    'page.html': '<p>page</p>',
  });
  const wild = site('wild', { 'index.html': 'wildcard' });
  const catchAll = site('catchall', { 'index.html': 'catch-all', 'data.json': '{}', 'x.unknownext': 'x' });
  const api = site('api', { 'index.html': 'api root', 'v1.txt': 'api v1' });
  const other = site('other', { 'home.htm': 'other port' });
  site('secret', { 'password.txt': 'secret' });
  symlinkSync(path.join(dir, 'secret', 'password.txt'), path.join(catchAll, 'leak.txt'));
  portA = await freePort();
  portB = await freePort();
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(
    conf,
    `a.test:${portA} {
	root ${exact}
}
*.wild.test:${portA} {
	root ${wild}
}
a.test:${portA}/api {
	root ${api}
}
:${portA} {
	root ${catchAll}
	symlinks inside
}
127.0.0.1:${portB}, localhost:${portB} {
	bind 127.0.0.1
	root ${other}
	index nothere.html home.htm
}
`,
  );
  nc = await startNodecaddy(['-conf', conf], { listeners: 2 });
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const get = (port: number, p: string, host: string, method = 'GET') =>
  request(port, p, { headers: { Host: host }, method });

describe('virtual hosts', () => {
  test('startup lists every site with its listener', () => {
    const out = nc.stdout();
    assert.match(out, new RegExp(`^Serving HTTP on port ${portA}$`, 'm'));
    assert.match(out, new RegExp(`^Serving HTTP on 127\\.0\\.0\\.1:${portB}$`, 'm'));
    for (const label of [
      `http://a.test:${portA}`,
      `http://*.wild.test:${portA}`,
      `http://a.test:${portA}/api`,
      `http://localhost:${portA}`,
      `http://127.0.0.1:${portB}`,
    ]) {
      assert.ok(out.split('\n').includes(label), `${label} in ${out}`);
    }
    assert.ok(out.includes(`http://localhost:${portB}`));
  });

  test('exact host, wildcard, catch-all', async () => {
    assert.equal((await get(portA, '/', `a.test:${portA}`)).body, 'exact');
    assert.equal((await get(portA, '/', 'A.TEST')).body, 'exact');
    assert.equal((await get(portA, '/', 'x.wild.test')).body, 'wildcard');
    assert.equal((await get(portA, '/', 'y.x.wild.test')).body, 'catch-all');
    assert.equal((await get(portA, '/', 'nobody.test')).body, 'catch-all');
  });

  test('the longest site path wins and is stripped before the file server', async () => {
    assert.equal((await get(portA, '/api/', 'a.test')).body, 'api root');
    assert.equal((await get(portA, '/api/v1.txt', 'a.test')).body, 'api v1');
    assert.equal((await get(portA, '/api/sub/', 'a.test')).status, 404, 'api root has no sub/');
    assert.equal((await get(portA, '/sub/', 'a.test')).body, 'exact sub');
  });

  test('a second port with bind and its own index list', async () => {
    const r = await get(portB, '/', `localhost:${portB}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'other port');
    const unknown = await get(portB, '/', 'elsewhere.test');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, '404 Site elsewhere.test is not served on this interface\n');
    assert.equal(unknown.headers['content-type'], 'text/plain; charset=utf-8');
  });
});

describe('static files (the end of the chain)', () => {
  test('mime types, Content-Length, Last-Modified, HEAD', async () => {
    const r = await get(portA, '/page.html', 'a.test');
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['content-length'], String('<p>page</p>'.length));
    assert.ok(r.headers['last-modified']);
    assert.equal(
      (await get(portA, '/data.json', 'x')).headers['content-type'],
      'application/json; charset=utf-8',
    );
    assert.equal(
      (await get(portA, '/x.unknownext', 'x')).headers['content-type'],
      'application/octet-stream',
    );
    const head = await get(portA, '/page.html', 'a.test', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String('<p>page</p>'.length));
  });

  test('directory redirects keep the site prefix and query', async () => {
    const r = await get(portA, '/sub?q=1', 'a.test');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/sub/?q=1');
    const file = await get(portA, '/page.html/', 'a.test');
    assert.equal(file.status, 301);
    assert.equal(file.headers.location, '/page.html');
  });

  test('404 and 405 are the default error pages', async () => {
    const missing = await get(portA, '/missing', 'a.test');
    assert.equal(missing.status, 404);
    assert.equal(missing.body, '404 Not Found\n');
    assert.equal(missing.headers['x-content-type-options'], 'nosniff');
    const post = await get(portA, '/page.html', 'a.test', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  test('nothing outside root', async () => {
    for (const p of [
      '/../secret/password.txt',
      '/%2e%2e/secret/password.txt',
      '/..%2fsecret%2fpassword.txt',
      '/sub/../../secret/password.txt',
      '/leak.txt',
    ]) {
      const r = await get(portA, p, 'x');
      assert.ok(r.status === 404 || r.status === 400, `${p} → ${r.status}`);
      assert.ok(!r.body.includes('secret'), p);
    }
    for (const p of ['/%00', '/a%zz', '/..\\secret']) {
      const r = await get(portA, p, 'x');
      assert.ok(r.status === 400 || r.status === 404, `${p} → ${r.status}`);
    }
  });

  test('request targets: absolute-form routes by its authority, OPTIONS * is answered, others are 400', async () => {
    const abs = await rawRequest(
      portA,
      'GET http://x.wild.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n',
    );
    assert.match(abs, /^HTTP\/1\.1 200 /);
    assert.match(abs, /\r\n\r\nwildcard$/);
    const absNoPath = await rawRequest(
      portA,
      'GET http://a.test?x=1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n',
    );
    assert.match(absNoPath, /\r\n\r\nexact$/);
    const options = await rawRequest(
      portA,
      'OPTIONS * HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n',
    );
    assert.match(options, /^HTTP\/1\.1 200 /);
    assert.match(options, /Content-Length: 0/i);
    const relative = await rawRequest(
      portA,
      'GET index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n',
    );
    assert.match(relative, /^HTTP\/1\.1 400 /);
  });

  test('an oversized header gets a 431', async () => {
    const out = await rawRequest(
      portA,
      `GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`,
    );
    assert.match(out, /^HTTP\/1\.1 431 /);
  });

  test('a garbage request line gets a 400 and the server stays up', async () => {
    const out = await rawRequest(portA, 'BLAH\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.equal((await get(portA, '/', 'a.test')).body, 'exact');
  });
});
