// Request bodies that proxy, fastcgi and tunnel forward are fresh socket reads: consuming them brings a minor
// collection every READ_GC_BYTES (src/core/read-gc.ts), counted here by a stand-in gc in this process,
// where the server runs. A 3 x READ_GC_BYTES upload must bring at least two.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { READ_GC_BYTES } from '../../src/core/read-gc.js';
import { withCountingGc } from '../helpers/gc.js';
import { startInProcess, type InProcess } from '../helpers/inprocess.js';
import { phpFpmSkip, startPhpFpm, type PhpFpm } from '../helpers/phpfpm.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { SECRET, startClient, startTarget, viaTunnel, text, type Target } from '../helpers/tunnel.js';

const UPLOAD = 3 * READ_GC_BYTES;

/** UPLOAD bytes in 64 KB pieces, as a client would stream them. */
function upload(): Readable {
  const piece = Buffer.alloc(65536, 'x');
  let left = UPLOAD;
  return new Readable({
    read() {
      const n = Math.min(left, piece.length);
      left -= n;
      this.push(n > 0 ? piece.subarray(0, n) : null);
    },
  });
}

/** POSTs UPLOAD bytes (with a Content-Length) and returns the answer's body. */
function post(port: number, urlPath: string, host = `127.0.0.1:${port}`): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: urlPath,
      method: 'POST',
      headers: { host, 'content-length': String(UPLOAD) },
      agent: false,
    });
    req.on('response', (res) => resolve(text(res)));
    req.on('error', reject);
    upload().pipe(req);
  });
}

describe('request bodies count as socket reads', () => {
  let tmp: { dir: string; cleanup: () => void };
  let backend: http.Server;
  let fpm: PhpFpm | undefined;
  let target: Target;
  let server: InProcess;
  let client: Nodecaddy;
  let port: number;

  before(async () => {
    tmp = tempDir();
    const www = path.join(tmp.dir, 'www');
    mkdirSync(www);
    writeFileSync(path.join(www, 'length.php'), "<?php echo strlen(file_get_contents('php://input'));");
    backend = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    if (!phpFpmSkip()) fpm = await startPhpFpm({ children: 1 });
    target = await startTarget();
    port = await freePort();
    const fastcgi = fpm ? `\tfastcgi /length.php 127.0.0.1:${fpm.port} php\n` : '';
    server = await startInProcess(
      `127.0.0.1:${port} {\n\troot www\n\tproxy /up 127.0.0.1:${(backend.address() as AddressInfo).port}\n${fastcgi}}\n` +
        `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret ${SECRET}\n\t}\n}\n`,
      tmp.dir,
    );
    client = await startClient(port, 'uploads', target.port);
  });

  after(async () => {
    await client?.stop();
    await server?.stop();
    await target?.close();
    await fpm?.stop();
    backend?.close();
    tmp?.cleanup();
  });

  test('proxy', () =>
    withCountingGc(async (calls) => {
      assert.equal(await post(port, '/up'), String(UPLOAD));
      assert.ok(calls.length >= 2, `${calls.length} collections`);
    }));

  test('fastcgi', { skip: phpFpmSkip() }, () =>
    withCountingGc(async (calls) => {
      assert.equal(await post(port, '/length.php'), String(UPLOAD));
      assert.ok(calls.length >= 2, `${calls.length} collections`);
    }),
  );

  test('tunnel (the visitor side; the answer over the link is small)', () =>
    withCountingGc(async (calls) => {
      const res = await viaTunnel(port, 'uploads', '/sha', { method: 'POST', body: upload() });
      assert.equal((await text(res)).length, 64);
      assert.ok(calls.length >= 2, `${calls.length} collections`);
    }));
});
