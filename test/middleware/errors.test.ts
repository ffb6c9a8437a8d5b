// errors end to end through the real nodecaddy process: pages per status, the * page, a missing page.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { loadError } from '../helpers/inprocess.js';
import { runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { getRaw } from '../helpers/raw.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

const PAGE_404 = '<h1>Not here</h1>\n';
const PAGE_ANY = '<h1>Something went wrong</h1>\n';

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  mkdirSync(path.join(www, 'err'), { recursive: true });
  writeFileSync(path.join(www, 'index.html'), 'home\n');
  writeFileSync(path.join(www, 'err', '404.html'), PAGE_404);
  writeFileSync(path.join(dir, 'any.html'), PAGE_ANY);
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `http://pages.test:0 {
  root www
  gzip
  errors errors.log {
    404 err/404.html
    * ${path.join(dir, 'any.html')}
  }
}
http://missing.test:0 {
  root www
  errors {
    404 nowhere.html
  }
}
http://plain.test:0 {
  root www
  errors stdout
}
`,
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile'], { cwd: dir });
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

describe('errors pages', () => {
  test('404 page from a file relative to the root, with its status and an HTML type', async () => {
    const r = await request(port, '/no/such/file', { headers: { Host: 'pages.test' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['content-length'], String(PAGE_404.length));
    assert.equal(r.body, PAGE_404);
  });

  test('the page goes through gzip like any response', async () => {
    const r = await getRaw(port, '/nope', { Host: 'pages.test', 'Accept-Encoding': 'gzip' });
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.text, PAGE_404);
  });

  test('* page (absolute path) for other statuses, keeping the error headers (405 Allow)', async () => {
    const r = await request(port, '/', { method: 'POST', headers: { Host: 'pages.test' } });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.body, PAGE_ANY);
  });

  test('HEAD gets the status and headers without a body', async () => {
    const r = await request(port, '/nope', { method: 'HEAD', headers: { Host: 'pages.test' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-length'], String(PAGE_404.length));
    assert.equal(r.body, '');
  });

  test('a page file that is missing: warned at startup, the default text is served', async () => {
    assert.match(nc.stdout() + nc.stderr(), /Unable to open error page '.*nowhere\.html' \(Caddyfile:\d+\)/);
    const r = await request(port, '/nope', { headers: { Host: 'missing.test' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.body, '404 Not Found\n');
  });

  test('no page configured: the default text error', async () => {
    const r = await request(port, '/nope', { headers: { Host: 'plain.test' } });
    assert.equal(r.status, 404);
    assert.equal(r.body, '404 Not Found\n');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  });
});

describe('errors: bad configuration fails at load time with file:line', () => {
  const cases: [string, RegExp][] = [
    ['errors a b', /Only 1 Argument expected for errors directive/],
    ['errors {\n 404 a.html\n 404 b.html\n}', /Duplicate status code entry: 404/],
    ['errors {\n * a.html\n * b.html\n}', /Duplicate status code entry: \*/],
    ['errors {\n four a.html\n}', /Expecting a numeric status code or '\*', got 'four'/],
    ['errors {\n 404\n}', /expected '<status code> <file>' or '\* <file>'/],
    ['errors e.log {\n rotate_keep x\n}', /invalid roller parameter/],
    ['errors syslog://h:514', /errors output 'syslog:\/\/h:514' is not supported/],
  ];
  for (const [body, want] of cases) {
    test(body.replace(/\n/g, ' '), () => {
      const message = loadError(`:0\n${body}\n`, dir);
      assert.match(message, want);
      assert.match(message, /^Caddyfile:\d+ /);
    });
  }

  test('through the CLI: -validate names file and line', async () => {
    writeFileSync(path.join(dir, 'bad.caddy'), ':0\nerrors {\n  500 x.html\n  500 y.html\n}\n');
    const r = await runNodecaddy(['-conf', 'bad.caddy', '-validate'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.caddy:4 .*Duplicate status code entry: 500/);
  });
});
