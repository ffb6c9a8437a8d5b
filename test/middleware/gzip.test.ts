// gzip end to end through the real nodecaddy process: options, negotiation and headers.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { getRaw } from '../helpers/raw.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

const HTML = '<!doctype html><p>' + 'hello gzip world, '.repeat(400) + '</p>\n';
// Moderately compressible text, so that level 1 and level 9 give different sizes.
const WORDS = Array.from({ length: 4000 }, (_, i) => `w${(i * 7919) % 1543} ${i % 97}`).join(' ');

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  mkdirSync(path.join(www, 'raw'), { recursive: true });
  mkdirSync(path.join(www, 'a'), { recursive: true });
  writeFileSync(path.join(www, 'index.html'), HTML);
  writeFileSync(path.join(www, 'page.html'), HTML);
  writeFileSync(path.join(www, 'raw', 'page.html'), HTML);
  writeFileSync(path.join(www, 'a', 'x.html'), HTML);
  writeFileSync(path.join(www, 'a', 'x.css'), HTML);
  writeFileSync(path.join(www, 'noext'), HTML);
  writeFileSync(path.join(www, 'data.dat'), HTML);
  writeFileSync(path.join(www, 'words.txt'), WORDS);
  writeFileSync(path.join(www, 'small.txt'), 'tiny\n');
  writeFileSync(path.join(www, 'empty.txt'), '');
  writeFileSync(path.join(www, 'pic.png'), randomBytes(4096));
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `http://default.test:0 {
  root www
  gzip
}
http://star.test:0 {
  root www
  gzip {
    ext *
  }
}
http://exts.test:0 {
  root www
  gzip {
    ext .dat ""
  }
}
http://not.test:0 {
  root www
  gzip {
    not /raw
  }
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
http://min.test:0 {
  root www
  gzip {
    min_length 1000
  }
}
http://multi.test:0 {
  root www
  gzip {
    not /a
  }
  gzip {
    ext .css
  }
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

/** `ae` null: no Accept-Encoding header at all. */
const get = (host: string, p: string, ae: string | null = 'gzip', method = 'GET') =>
  getRaw(port, p, { Host: host, ...(ae === null ? {} : { 'Accept-Encoding': ae }) }, method);

describe('gzip: compression and headers', () => {
  test('compresses a default extension: Content-Encoding, Vary, no Content-Length, body intact', async () => {
    const r = await get('default.test', '/page.html');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.ok(r.raw.length < HTML.length / 10, `compressed to ${r.raw.length}`);
    assert.equal(r.text, HTML);
  });

  test('a directory index (no extension in the path) is compressed', async () => {
    const r = await get('default.test', '/');
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.text, HTML);
  });

  test('no Accept-Encoding, or gzip;q=0, or an unknown coding: identity with Content-Length', async () => {
    for (const ae of [null, 'gzip;q=0', 'deflate', 'identity', 'gzip;q=0, br;q=0']) {
      const r = await get('default.test', '/page.html', ae);
      assert.equal(r.headers['content-encoding'], undefined, String(ae));
      assert.equal(r.headers['content-length'], String(HTML.length), String(ae));
      assert.equal(r.text, HTML);
    }
  });

  test('one negotiation (core/encoding.ts): highest q, then br > zstd > gzip; zstd where Node has it', async () => {
    const zstd = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function';
    const cases: [string, string | undefined][] = [
      ['br', 'br'],
      ['gzip;q=0.5, br', 'br'],
      ['br;q=0.9, gzip;q=0.8', 'br'],
      ['gzip, deflate, br', 'br'],
      ['br;q=0.5, gzip', 'gzip'],
      ['br;q=2', 'br'],
      ['*', 'br'],
      ['*;q=0.5, br;q=0.1', zstd ? 'zstd' : 'gzip'],
      ['zstd', zstd ? 'zstd' : undefined],
      ['gzip, zstd', zstd ? 'zstd' : 'gzip'],
      ['br;q=0.5, zstd;q=0.5, gzip;q=0.4', 'br'],
      ['x-gzip', 'gzip'],
      ['gzip;q=0.5, identity', undefined],
    ];
    for (const [ae, want] of cases) {
      const r = await get('default.test', '/page.html', ae);
      assert.equal(r.headers['content-encoding'], want, ae);
      assert.equal(r.text, HTML, ae);
    }
  });

  test('HEAD is never compressed but says Vary; its Content-Length is the real one', async () => {
    const r = await get('default.test', '/page.html', 'gzip', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['content-length'], String(HTML.length));
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal(r.raw.length, 0);
  });

  test('default extensions: .png and .dat are not in the list', async () => {
    for (const p of ['/pic.png', '/data.dat']) {
      const r = await get('default.test', p);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], undefined, p);
    }
  });

  test('ext *: everything, except already compressed types (image/png)', async () => {
    assert.equal((await get('star.test', '/data.dat')).headers['content-encoding'], 'gzip');
    const png = await get('star.test', '/pic.png');
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.raw.length, 4096);
  });

  test('ext .dat "": only those; "" is a path without extension', async () => {
    assert.equal((await get('exts.test', '/data.dat')).headers['content-encoding'], 'gzip');
    assert.equal((await get('exts.test', '/noext')).headers['content-encoding'], 'gzip');
    assert.equal((await get('exts.test', '/page.html')).headers['content-encoding'], undefined);
  });

  test('not /raw: excluded prefix', async () => {
    const raw = await get('not.test', '/raw/page.html');
    assert.equal(raw.headers['content-encoding'], undefined);
    assert.equal(raw.text, HTML);
    assert.equal((await get('not.test', '/page.html')).headers['content-encoding'], 'gzip');
  });

  test('level 1 compresses less than level 9; both decode to the file', async () => {
    const fast = await get('l1.test', '/words.txt');
    const best = await get('l9.test', '/words.txt');
    assert.equal(fast.text, WORDS);
    assert.equal(best.text, WORDS);
    assert.ok(best.raw.length < fast.raw.length, `level 9 ${best.raw.length} < level 1 ${fast.raw.length}`);
  });

  test('min_length: only responses whose Content-Length reaches it', async () => {
    const small = await get('min.test', '/small.txt');
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(small.text, 'tiny\n');
    assert.equal((await get('min.test', '/page.html')).headers['content-encoding'], 'gzip');
  });

  test('an empty body is never compressed', async () => {
    const r = await get('star.test', '/empty.txt');
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.raw.length, 0);
  });

  test('several gzip configs: the first whose request filters pass', async () => {
    // /a/x.html: the first config excludes /a, the second wants .css only.
    assert.equal((await get('multi.test', '/a/x.html')).headers['content-encoding'], undefined);
    assert.equal((await get('multi.test', '/a/x.css')).headers['content-encoding'], 'gzip');
    assert.equal((await get('multi.test', '/page.html')).headers['content-encoding'], 'gzip');
  });

  test('a 404 from the file server is compressed too, with the right status', async () => {
    const r = await get('default.test', '/missing.html');
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.text, '404 Not Found\n');
  });
});

describe('gzip: bad configuration fails at load time with file:line', () => {
  const cases: [string, RegExp][] = [
    ['gzip extra', /gzip takes no arguments/],
    ['gzip {\n ext html\n}', /invalid extension "html" \(must start with dot\)/],
    ['gzip {\n ext\n}', /expected 'ext/],
    ['gzip {\n not /\n}', /cannot exclude path "\/"/],
    ['gzip {\n not raw\n}', /invalid path "raw" \(must start with \/\)/],
    ['gzip {\n min_length 0\n}', /min_length must be greater than 0/],
    ['gzip {\n min_length -5\n}', /min_length must be a whole number/],
    ['gzip {\n min_length 1 2\n}', /expected 'min_length <bytes>'/],
    ['gzip {\n level\n}', /expected 'level <1-9>'/],
    ['gzip {\n levle 5\n}', /Unknown subdirective 'levle' \(did you mean 'level'\?\)/],
  ];
  for (const [body, want] of cases) {
    test(body.replace(/\n/g, ' '), async () => {
      const file = path.join(dir, 'bad.caddy');
      writeFileSync(file, `:0\n${body}\n`);
      const r = await runNodecaddy(['-conf', 'bad.caddy', '-validate'], { cwd: dir });
      assert.equal(r.code, 1);
      assert.match(r.stderr, want);
      assert.match(r.stderr, /bad\.caddy:\d+/);
    });
  }

  test('an unusable level is a warning and means 6 (Caddy v1 took it silently)', async () => {
    writeFileSync(path.join(dir, 'lvl.caddy'), ':0\ngzip {\n level 42\n}\n');
    const r = await runNodecaddy(['-conf', 'lvl.caddy', '-validate'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /gzip level '42' is not 1-9; using 6/);
  });
});
