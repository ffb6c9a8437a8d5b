// Which gzip the real nodecaddy process uses for whole bodies: the libdeflate binding where it is built (in CI
// it must be), node:zlib where it is not or where NODECADDY_GZIP=zlib turns it off; both give a gzip stream
// every client reads, and `-version` says which one serves.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { libdeflate } from '../../src/middleware/gzip/libdeflate.js';
import { runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { getRaw } from '../helpers/raw.js';

/** The OS byte of a gzip header: zlib writes 3 (Unix), libdeflate 255 (unknown). */
const OS_BYTE = 9;
const PAGE = `<!doctype html>${Array.from({ length: 3000 }, (_, i) => `<p>item ${(i * 7919) % 1009}</p>`).join('\n')}`;
const builtOrCi = Boolean(libdeflate) || Boolean(process.env.CI);

let cleanup: () => void;
let backend: http.Server;
let withBinding: Nodecaddy;
let withZlib: Nodecaddy;

before(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir());
  backend = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(PAGE) });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendPort = (backend.address() as AddressInfo).port;
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `http://127.0.0.1:0 {\n  gzip\n  proxy / 127.0.0.1:${backendPort}\n}\n`,
  );
  withBinding = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1'], { cwd: dir });
  withZlib = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1'], {
    cwd: dir,
    env: { NODECADDY_GZIP: 'zlib' },
  });
});

after(async () => {
  await withBinding?.stop();
  await withZlib?.stop();
  await new Promise((resolve) => backend?.close(resolve));
  cleanup?.();
});

const gzipped = (nc: Nodecaddy) => getRaw(nc.ports[0], '/page.html', { 'Accept-Encoding': 'gzip' });

describe('the gzip of whole bodies in the nodecaddy process', () => {
  test(
    'libdeflate where it is built: a proxied page comes back gzipped by it, and reads back whole',
    {
      skip: builtOrCi ? false : 'the libdeflate binding is not built here',
    },
    async () => {
      const r = await gzipped(withBinding);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.text, PAGE);
      assert.equal(r.raw[OS_BYTE], 255, "libdeflate's OS byte");
      const v = await runNodecaddy(['-version']);
      assert.match(v.stdout, /^nodecaddy \S+\ngzip: libdeflate \d+\.\d+\n$/);
    },
  );

  test('NODECADDY_GZIP=zlib: node:zlib gzips it, and -version says so and why', async () => {
    const r = await gzipped(withZlib);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.text, PAGE);
    assert.equal(r.raw[OS_BYTE], 3, "zlib's OS byte");
    const v = await runNodecaddy(['-version'], { env: { NODECADDY_GZIP: 'zlib' } });
    assert.match(v.stdout, /\ngzip: node:zlib \(turned off by NODECADDY_GZIP=zlib\)\n$/);
  });
});
