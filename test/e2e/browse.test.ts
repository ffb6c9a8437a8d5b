// browse through the real nodecaddy process: listing, sorting and its cookies, limit, JSON, hidden files,
// escaping, fall-through to the file server, custom templates and their load errors.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let root: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;
const XSS = '<img src=x onerror=alert(1)>"\'&.txt';

before(async () => {
  ({ dir, cleanup } = tempDir());
  root = path.join(dir, 'site');
  const files: [string, string, number][] = [
    ['b.txt', 'bb', 3000],
    ['A.txt', 'aaaa', 1000],
    ['c.txt', 'c', 2000],
    ['Zdir/x.txt', 'x', 1500],
    ['adir/y.txt', 'y', 1500],
    ['withindex/index.html', 'the index', 1500],
    ['pub/tpl/f.txt', 'f', 1500],
    [XSS, 'x', 2500],
  ];
  for (const [name, body, t] of files) {
    const file = path.join(root, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, body);
    utimesSync(file, t, t);
  }
  mkdirSync(path.join(dir, 'outside'));
  writeFileSync(path.join(dir, 'outside', 'secret.txt'), 'secret');
  symlinkSync(path.join(dir, 'outside', 'secret.txt'), path.join(root, 'leak.txt'));
  symlinkSync(path.join(root, 'adir'), path.join(root, 'linked'));
  writeFileSync(path.join(root, 'snippet.conf'), 'index index.html\n');
  writeFileSync(
    path.join(dir, 'custom.tpl'),
    '<h1>{{name}}</h1>{{#items}}<li data-dir="{{isDir}}">{{name}}={{humanSize}}</li>{{/items}}{{^items}}empty{{/items}}',
  );
  const conf = path.join(root, 'Caddyfile');
  writeFileSync(
    conf,
    `127.0.0.1:0 {\n\troot ${root}\n\tsymlinks inside\n\timport snippet.conf\n\tbrowse /pub/tpl ${path.join(dir, 'custom.tpl')}\n\tbrowse /\n}\n`,
  );
  nc = await startNodecaddy(['-conf', conf]);
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const get = (p: string, headers: Record<string, string> = {}, method = 'GET') =>
  request(port, p, { headers, method });

/** Entry names in page order. */
const names = (html: string) =>
  [...html.matchAll(/<tr class="entry [^"]*" data-name="([^"]*)"/g)].map((m) => m[1]);
const json = async (p: string, headers: Record<string, string> = {}) => {
  const res = await get(p, { Accept: 'application/json', ...headers });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  return JSON.parse(res.body) as {
    Name: string;
    Size: number;
    URL: string;
    IsDir: boolean;
    IsSymlink: boolean;
    ModTime: string;
    Mode: number;
  }[];
};

describe('browse', () => {
  test('HTML listing: dirs first by name, sizes, times, links, breadcrumbs, no Caddyfile or import', async () => {
    const res = await get('/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    const escapedXss = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;.txt';
    assert.deepEqual(names(res.body), [
      'adir',
      'linked',
      'pub',
      'withindex',
      'Zdir',
      escapedXss,
      'A.txt',
      'b.txt',
      'c.txt',
    ]);
    assert.match(res.body, /<a href="\.\/adir\/">/);
    assert.match(res.body, /<a href="\.\/A\.txt">/);
    assert.match(res.body, /<td class="size" data-order="4">4 B<\/td>/);
    assert.match(res.body, /<time datetime="1970-01-01T00:16:40\.000Z">/);
    assert.match(res.body, /5 directories, 4 files/);
    assert.doesNotMatch(res.body, /Caddyfile|snippet\.conf|leak\.txt/);
    assert.doesNotMatch(res.body, /Go up/);
    const sub = await get('/adir/');
    assert.match(
      sub.body,
      /<h1><a href="\.\.\/">\/<\/a><a href="\.\/">adir<\/a><span class="sep">\/<\/span><\/h1>/,
    );
    assert.match(sub.body, /<a href="\.\.">.*Go up<\/a>/);
  });

  test('a hostile file name is escaped in HTML and in links', async () => {
    const { body } = await get('/');
    assert.ok(!body.includes('<img src=x'), 'raw markup from a file name');
    assert.match(body, /href="\.\/%3Cimg%20src%3Dx%20onerror%3Dalert\(1\)%3E%22&#39;%26\.txt"/);
    const file = await get('/' + encodeURIComponent(XSS));
    assert.equal(file.status, 200);
  });

  test('sort and order from the query, remembered in cookies; unknown sort keeps fs order', async () => {
    const bySize = await get('/?sort=size&order=desc');
    assert.deepEqual(names(bySize.body).slice(0, 2), ['A.txt', 'b.txt']);
    assert.deepEqual(names(bySize.body).slice(-5), ['Zdir', 'withindex', 'pub', 'linked', 'adir']);
    assert.deepEqual(bySize.headers['set-cookie'], [
      'sort=size; Path=/; SameSite=Lax',
      'order=desc; Path=/; SameSite=Lax',
    ]);
    const byTime = await get('/?sort=time');
    const escapedXss = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;.txt';
    assert.deepEqual(names(byTime.body).slice(0, 4), ['A.txt', 'c.txt', escapedXss, 'b.txt']);
    const byName = (await json('/?sort=name')).map((i) => i.Name);
    assert.deepEqual(byName.slice(0, 5), [XSS, 'A.txt', 'adir', 'b.txt', 'c.txt']);
    // No query: the cookies decide.
    const remembered = (await json('/', { Cookie: 'sort=size; order=desc' })).map((i) => i.Name);
    assert.equal(remembered[0], 'A.txt');
    assert.equal(remembered.at(-1), 'adir');
    const unknown = await get('/?sort=bogus');
    assert.equal(unknown.status, 200);
    assert.equal(unknown.headers['set-cookie'], undefined);
    // The header links toggle the active column's order and keep the limit.
    const page = await get('/?sort=name&order=asc&limit=3');
    assert.match(page.body, /id="sort-name" href="\?sort=name&amp;order=desc&amp;limit=3"/);
    assert.match(page.body, /id="sort-size" href="\?sort=size&amp;order=asc&amp;limit=3"/);
    assert.match(page.body, /class="name sorted asc" aria-sort="ascending"/);
  });

  test('a sort or order named after an inherited property is an unknown one, never a 500', async () => {
    const plain = names((await get('/?sort=bogus')).body);
    for (const value of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      for (const res of [
        await get(`/?sort=${value}`),
        await get(`/?sort=${value}&order=${value}`),
        await get('/', { Cookie: `sort=${value}; order=${value}` }),
      ]) {
        assert.equal(res.status, 200, value);
        assert.equal(res.headers['set-cookie'], undefined, value);
        assert.deepEqual(names(res.body), plain, `${value}: the file system's order`);
      }
    }
  });

  test('limit cuts after sorting; a non-integer limit is a 400', async () => {
    const res = await get('/?sort=name&limit=3');
    assert.equal(names(res.body).length, 3);
    assert.deepEqual(names(res.body).slice(1), ['A.txt', 'adir']);
    assert.match(res.body, /\(of which only 3 are shown\)/);
    assert.equal((await json('/?limit=1')).length, 1);
    assert.equal((await json('/?limit=0')).length, 9);
    assert.equal((await get('/?limit=abc')).status, 400);
    assert.equal((await get('/?limit=1.5')).status, 400);
  });

  test('JSON with Caddy field names', async () => {
    const items = await json('/?sort=namedirfirst&order=asc');
    const a = items.find((i) => i.Name === 'A.txt');
    assert.deepEqual(
      { ...a, ModTime: undefined },
      {
        Name: 'A.txt',
        Size: 4,
        URL: './A.txt',
        ModTime: undefined,
        Mode: a?.Mode,
        IsDir: false,
        IsSymlink: false,
      },
    );
    assert.equal(a?.ModTime, '1970-01-01T00:16:40.000Z');
    const linked = items.find((i) => i.Name === 'linked');
    assert.equal(linked?.IsDir, true);
    assert.equal(linked?.IsSymlink, true);
    assert.equal(linked?.URL, './linked/');
    assert.ok(!items.some((i) => ['Caddyfile', 'snippet.conf', 'leak.txt'].includes(i.Name)));
  });

  test('not a listable directory: falls through to the file server', async () => {
    assert.equal((await get('/A.txt')).body, 'aaaa');
    assert.equal((await get('/withindex/')).body, 'the index');
    const redirect = await get('/adir');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/adir/');
    assert.equal((await get('/missing/')).status, 404);
    assert.equal((await get('/Caddyfile')).status, 404);
    assert.equal((await get('/', {}, 'PROPFIND')).status, 501);
    assert.equal((await get('/', {}, 'POST')).status, 405);
    const head = await get('/', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 1000);
  });

  test('a listing is sent again as rendered before only while its entries stay the same', async () => {
    const sub = path.join(root, 'changing');
    mkdirSync(sub);
    writeFileSync(path.join(sub, 'f.txt'), 'one');
    utimesSync(path.join(sub, 'f.txt'), 1000, 1000);
    const sizeOf = async () => (await json('/changing/')).find((i) => i.Name === 'f.txt')?.Size;
    const first = await get('/changing/');
    assert.equal((await get('/changing/')).body, first.body);
    assert.equal(await sizeOf(), 3, 'JSON and HTML of one directory are kept apart');
    assert.match((await get('/changing/')).body, /data-name="f.txt"/);
    // Bigger, then the same size with another time, then a new entry: each shows at once.
    writeFileSync(path.join(sub, 'f.txt'), 'three');
    utimesSync(path.join(sub, 'f.txt'), 1000, 1000);
    await waitFor(async () => (await sizeOf()) === 5, 5000, 'the new size in JSON');
    await waitFor(async () => (await get('/changing/')).body.includes('5 B'), 5000, 'the new size in HTML');
    utimesSync(path.join(sub, 'f.txt'), 2000, 2000);
    await waitFor(
      async () => (await get('/changing/')).body.includes('1970-01-01 00:33'),
      5000,
      'the new time',
    );
    writeFileSync(path.join(sub, 'g.txt'), 'g');
    await waitFor(
      async () => names((await get('/changing/')).body).join() === 'f.txt,g.txt',
      5000,
      'the new entry',
    );
    assert.deepEqual(names((await get('/changing/?sort=name&order=desc')).body), ['g.txt', 'f.txt']);
    assert.deepEqual(names((await get('/changing/?sort=name&order=asc')).body), ['f.txt', 'g.txt']);
  });

  test('a custom template for its own path', async () => {
    const res = await get('/pub/tpl/');
    assert.equal(res.status, 200);
    assert.equal(res.body, '<h1>tpl</h1><li data-dir="false">f.txt=1 B</li>');
  });
});

describe('browse setup errors', () => {
  const validate = async (conf: string) => {
    const { dir: d, cleanup: c } = tempDir();
    try {
      writeFileSync(path.join(d, 'bad.tpl'), '<p>{{#items}}{{nmae}}{{/items}}</p>');
      writeFileSync(path.join(d, 'open.tpl'), '{{#items}}');
      writeFileSync(path.join(d, 'Caddyfile'), conf);
      return await runNodecaddy(['-conf', path.join(d, 'Caddyfile'), '-validate'], { cwd: d });
    } finally {
      c();
    }
  };

  test('unknown placeholder, unclosed section, missing file, duplicates, too many args', async () => {
    const cases: [string, RegExp][] = [
      [':0 {\n\tbrowse / bad.tpl\n}\n', /Caddyfile:2 .*unknown placeholder \{\{nmae\}\}.*template line 1/],
      [':0 {\n\tbrowse / open.tpl\n}\n', /Caddyfile:2 .*\{\{#items\}\} is never closed/],
      [':0 {\n\tbrowse / nothere.tpl\n}\n', /Caddyfile:2 .*cannot read browse template/],
      [':0 {\n\tbrowse /a\n\tbrowse /a\n}\n', /Caddyfile:3 .*duplicate browsing config for \/a/],
      [':0 {\n\tbrowse / bad.tpl extra\n}\n', /Caddyfile:2 .*Wrong argument count/],
    ];
    for (const [conf, message] of cases) {
      const { code, stderr, stdout } = await validate(conf);
      assert.notEqual(code, 0, conf);
      assert.match(stderr + stdout, message, conf);
    }
  });
});
