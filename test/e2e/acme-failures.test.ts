// Automatic HTTPS when the CA is not there or misbehaves: nodecaddy never waits for the CA to serve. With the CA
// down at start, a name whose certificate is stored serves at once and a new name is retried with backoff
// until the CA is back (with a reset database: the account is registered again); a CA that answers with errors
// is logged and retried while everything else serves; a slow CA (Pebble's random validation sleeps and its
// rejected nonces, both on in this one test) still gets there.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { startWithAcme } from '../helpers/acme.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true);

describe('automatic HTTPS when the CA fails', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-fail-');
  const pebbles: Pebble[] = [];
  const running: Nodecaddy[] = [];

  before(() => writeFileSync(path.join(dir, 'index.html'), 'still serving\n'));
  after(async () => {
    await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
    await Promise.all(pebbles.map((p) => p.stop()));
    cleanup();
  });

  async function setup(opts: { vaNoSleep?: boolean; nonceRejectPercent?: number } = {}) {
    const httpPort = await freePort();
    const httpsPort = await freePort();
    const pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true, ...opts });
    pebbles.push(pebble);
    const serve = async (caddyfile: string, data: string, listeners = 2) => {
      const file = path.join(dir, `${data}.Caddyfile`);
      writeFileSync(file, caddyfile);
      const nc = await startWithAcme(file, { pebble, httpPort, httpsPort, data: path.join(dir, data) }, [], {
        cwd: dir,
        listeners,
      });
      running.push(nc);
      return nc;
    };
    return { pebble, httpPort, httpsPort, serve };
  }

  test('the CA down at start: the stored name serves at once, the new one is retried until the CA is back', async () => {
    const { pebble, httpsPort, serve } = await setup();
    const site = (name: string) => `${name} {\n\troot ${dir}\n}\n`;
    const first = await serve(site('stored.example.com'), 'down');
    const oldRoot = await pebble.root();
    await waitFor(
      () => tlsRequest(httpsPort, { servername: 'stored.example.com', ca: oldRoot }),
      15_000,
      'the first certificate',
    );
    await first.stop();

    await pebble.stopCa();
    const nc = await serve(site('stored.example.com') + site('later.example.com'), 'down');
    const stored = await tlsRequest(httpsPort, { servername: 'stored.example.com', ca: oldRoot });
    assert.equal(stored.status, 200);
    assert.equal(stored.body.toString(), 'still serving\n');
    await waitFor(() => /retrying in/.test(nc.stderr()), 15_000, 'a failed order and its retry');
    assert.match(
      nc.stderr(),
      /later\.example\.com.*obtaining a certificate failed|obtaining a certificate failed.*later/,
    );
    await assert.rejects(tlsRequest(httpsPort, { servername: 'later.example.com', ca: oldRoot }));

    // Back, with a new database and a new root: the account is registered again and the order goes through.
    await pebble.startCa();
    const newRoot = await pebble.root();
    const later = await waitFor(
      () => tlsRequest(httpsPort, { servername: 'later.example.com', ca: newRoot }),
      30_000,
      'the retried order',
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${nc.stderr()}`);
    });
    assert.equal(later.status, 200);
    // The stored one was never touched.
    const again = await tlsRequest(httpsPort, { servername: 'stored.example.com', ca: oldRoot });
    assert.equal(again.peer.fingerprint256, stored.peer.fingerprint256);
    await nc.stop();
  });

  test('a CA that answers with errors is logged and retried; the rest serves', async () => {
    const { httpPort, serve } = await setup();
    let hits = 0;
    const broken = http.createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(500, { 'Content-Type': 'application/problem+json' });
      res.end(
        JSON.stringify({
          type: 'urn:ietf:params:acme:error:serverInternal',
          detail: 'the CA is having a bad day',
        }),
      );
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    const brokenCa = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/dir`;
    try {
      const nc = await serve(
        `broken.example.com {\n\troot ${dir}\n\ttls {\n\t\tca ${brokenCa}\n\t}\n}\n` +
          `http://plain.example.com:${httpPort} {\n\troot ${dir}\n}\n`,
        'broken',
      );
      await waitFor(() => (nc.stderr().match(/retrying in/g)?.length ?? 0) >= 2, 20_000, 'two retries');
      assert.match(nc.stderr(), /obtaining a certificate failed/);
      assert.ok(hits >= 2);
      const plain = await request(httpPort, '/', { headers: { host: 'plain.example.com' } });
      assert.equal(plain.status, 200);
      assert.equal(plain.body, 'still serving\n');
      assert.equal(nc.child.exitCode, null, 'still running');
      await nc.stop();
    } finally {
      broken.close();
    }
  });

  test("a slow CA (Pebble's random validation sleeps, 5% rejected nonces) still issues", async () => {
    const { pebble, httpsPort, serve } = await setup({ vaNoSleep: false, nonceRejectPercent: 5 });
    const nc = await serve(`slow.example.com {\n\troot ${dir}\n}\n`, 'slow');
    const res = await waitFor(
      async () => tlsRequest(httpsPort, { servername: 'slow.example.com', ca: await pebble.root() }),
      45_000,
      'a certificate from a slow CA',
    );
    assert.equal(res.status, 200);
    await nc.stop();
  });
});
