// Automatic HTTPS end to end: the real nodecaddy obtains certificates from a real ACME CA (Debian's Pebble, with
// pebble-challtestsrv resolving every name to 127.0.0.1) by HTTP-01 and by TLS-ALPN-01, serves them with a chain
// that verifies against Pebble's root, redirects plain HTTP, and reuses what it stored across a restart and a
// reload (no new order at the CA).
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { orderLockName } from '../../src/certs/acme/stored.js';
import { safeKeyPart } from '../../src/certs/storage.js';
import { request, waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { startWithAcme } from '../helpers/acme.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true);

describe('automatic HTTPS with an ACME CA', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-');
  let pebble: Pebble;
  let httpPort: number;
  let httpsPort: number;
  const running: Nodecaddy[] = [];

  before(async () => {
    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true });
    writeFileSync(path.join(dir, 'index.html'), 'hello over automatic HTTPS\n');
  });
  after(async () => {
    await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
    await pebble?.stop();
    cleanup();
  });

  async function serve(caddyfile: string, ...flags: string[]): Promise<Nodecaddy> {
    const file = path.join(dir, 'Caddyfile');
    writeFileSync(file, caddyfile);
    const nc = await startWithAcme(
      file,
      { pebble, httpPort, httpsPort, data: path.join(dir, 'data') },
      ['-email', 'ops@example.com', ...flags],
      { cwd: dir, listeners: 2 },
    );
    running.push(nc);
    return nc;
  }

  /** A verified HTTPS request for the name, once its certificate is there. */
  async function fetchVerified(name: string, root: string, timeoutMs = 15_000) {
    return waitFor(
      () => tlsRequest(httpsPort, { servername: name, ca: root }),
      timeoutMs,
      `a certificate for ${name}`,
    );
  }

  test('HTTP-01: a public name with no port is served over HTTPS with a certificate from the CA', async () => {
    const nc = await serve(`http01.example.com {\n\troot ${dir}\n}\n`, '-disable-tls-alpn-challenge');
    assert.match(nc.stdout(), new RegExp(`^https://http01\\.example\\.com:${httpsPort}$`, 'm'));
    const root = await pebble.root();
    const res = await fetchVerified('http01.example.com', root);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'hello over automatic HTTPS\n');
    assert.match(res.peer.san, /DNS:http01\.example\.com/);
    // The chain verifies against Pebble's root only: without it the handshake is refused.
    await assert.rejects(tlsRequest(httpsPort, { servername: 'http01.example.com' }));
    // Plain HTTP redirects to the HTTPS site.
    const plain = await request(httpPort, '/page?x=1', { headers: { host: 'http01.example.com' } });
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.location, `https://http01.example.com/page?x=1`);
    // The log line comes right after the certificate is served: it may trail the request a moment.
    await waitFor(() => /"challenge":"http-01"/.test(nc.stderr()), 5000, 'the order in the log');
    await waitFor(() => /certificate obtained/.test(nc.stderr()), 5000, 'the certificate in the log');
    await nc.stop();
  });

  test('a restart serves the stored certificate at once and orders nothing', async () => {
    const orders = pebble.orderCount();
    assert.ok(orders >= 1, 'the earlier test ordered');
    // Another instance holds the name's order lock (alive, by its record): anything that would wait for it to
    // serve the name (an order, a renewal) cannot; the stored certificate needs no lock.
    const lockFile = path.join(
      dir,
      'data',
      'locks',
      `${safeKeyPart(orderLockName(pebble.directoryUrl, 'http01.example.com'))}.lock`,
    );
    const alive = new Date(Date.now() + 600_000).toISOString();
    writeFileSync(
      lockFile,
      JSON.stringify({ created: alive, updated: alive, pid: 1, host: 'other', id: 'x' }),
    );
    try {
      const nc = await serve(`http01.example.com {\n\troot ${dir}\n}\n`);
      // No waiting: the first handshake after the startup listing already has it.
      const res = await tlsRequest(httpsPort, { servername: 'http01.example.com', ca: await pebble.root() });
      assert.equal(res.status, 200);
      assert.equal(pebble.orderCount(), orders);
      assert.doesNotMatch(nc.stderr(), /obtaining certificate/);
      await nc.stop();
    } finally {
      rmSync(lockFile, { force: true });
    }
  });

  test('TLS-ALPN-01 on the HTTPS listener itself; a reload keeps both certificates without a new order', async () => {
    const nc = await serve(
      `http01.example.com {\n\troot ${dir}\n}\nalpn.example.com {\n\troot ${dir}\n}\n`,
      '-disable-http-challenge',
    );
    const root = await pebble.root();
    const res = await fetchVerified('alpn.example.com', root);
    assert.equal(res.status, 200);
    assert.match(res.peer.san, /DNS:alpn\.example\.com/);
    assert.match(nc.stderr(), /tls-alpn-01/);
    // HTTP/2 too, with the same certificate.
    const h2 = await tlsRequest(httpsPort, { servername: 'alpn.example.com', ca: root, http2: true });
    assert.equal(h2.status, 200);
    assert.equal(h2.alpn, 'h2');

    const orders = pebble.orderCount();
    const file = path.join(dir, 'Caddyfile');
    writeFileSync(
      file,
      `http01.example.com {\n\troot ${dir}\n}\nalpn.example.com {\n\troot ${dir}\n\theader / X-Reloaded yes\n}\n`,
    );
    await waitFor(
      async () => {
        const r = await tlsRequest(httpsPort, { servername: 'alpn.example.com', ca: root });
        return r.headers['x-reloaded'] === 'yes';
      },
      15_000,
      'the reload',
    );
    const before = res.peer.fingerprint256;
    const again = await tlsRequest(httpsPort, { servername: 'alpn.example.com', ca: root });
    assert.equal(again.peer.fingerprint256, before);
    assert.equal(pebble.orderCount(), orders);
    await nc.stop();
  });
});
