// Automatic HTTPS with worker processes: the primary is the only ACME client, and every worker must answer the
// CA's validation requests (Pebble sends three at once per challenge; the kernel spreads their connections over
// the workers) and serve what the primary obtains. Then a renewal of short-lived certificates under a running
// load: the new certificate reaches every worker, and no request fails on the way.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminPort, sample, scrape } from '../helpers/admin.js';
import { waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { startWithAcme } from '../helpers/acme.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true);

describe('automatic HTTPS with -workers 2', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-workers-');
  const pebbles: Pebble[] = [];
  const running: Nodecaddy[] = [];

  before(() => writeFileSync(path.join(dir, 'index.html'), 'served by a worker\n'));
  after(async () => {
    await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
    await Promise.all(pebbles.map((p) => p.stop()));
    cleanup();
  });

  async function setup(validitySeconds?: number) {
    const httpPort = await freePort();
    const httpsPort = await freePort();
    const pebble = await startPebble({
      httpPort,
      tlsPort: httpsPort,
      dns: true,
      certificateValidityPeriod: validitySeconds,
    });
    pebbles.push(pebble);
    const serve = async (name: string, data: string, ...flags: string[]) => {
      const file = path.join(dir, `${name}.Caddyfile`);
      writeFileSync(file, `${name} {\n\troot ${dir}\n}\n`);
      const nc = await startWithAcme(
        file,
        { pebble, httpPort, httpsPort, data: path.join(dir, data), workers: 2 },
        flags,
        { cwd: dir, listeners: 2 },
      );
      running.push(nc);
      return nc;
    };
    return { pebble, httpsPort, serve };
  }

  test('both challenges are answered by whichever worker the validation reaches', async () => {
    const { pebble, httpsPort, serve } = await setup();
    const root = await pebble.root();
    for (const [name, flag] of [
      ['w-http.example.com', '-disable-tls-alpn-challenge'],
      ['w-alpn.example.com', '-disable-http-challenge'],
    ]) {
      const nc = await serve(name, `data-${name}`, flag, '-admin', '127.0.0.1:0');
      await waitFor(
        () => tlsRequest(httpsPort, { servername: name, ca: root }),
        20_000,
        `a certificate for ${name}`,
      );
      // Every new connection (either worker) gets the verified certificate.
      for (let i = 0; i < 12; i++) {
        const res = await tlsRequest(httpsPort, { servername: name, ca: root });
        assert.equal(res.status, 200);
        assert.match(res.peer.san, new RegExp(`DNS:${name.replace(/\./g, '\\.')}`));
      }
      assert.match(nc.stderr(), new RegExp(flag.includes('http') ? 'tls-alpn-01' : 'http-01'));
      // The primary's metrics: the order, and when the certificate expires.
      const metrics = await scrape(await adminPort(nc));
      assert.equal(metrics.get(sample('nodecaddy_acme_orders_total', { result: 'success' })), 1);
      const expiry = metrics.get(
        sample('nodecaddy_tls_certificate_expiry_timestamp_seconds', { subject: name }),
      );
      assert.ok(expiry !== undefined && expiry > Date.now() / 1000 + 86400, `expiry ${expiry}`);
      await nc.stop();
    }
  });

  test('a short-lived certificate is renewed under load, reaching every worker, with no failed request', async () => {
    // 15 s certificates: renewed with a third of the lifetime left, 10 s after they are issued.
    const { pebble, httpsPort, serve } = await setup(15);
    const root = await pebble.root();
    const name = 'renew.example.com';
    const nc = await serve(name, 'data-renew');
    const first = await waitFor(
      () => tlsRequest(httpsPort, { servername: name, ca: root }),
      20_000,
      'the first certificate',
    );
    const seen = new Set([first.peer.fingerprint256]);
    let failures = 0;
    let requests = 0;
    let renewedAt = 0;
    const deadline = Date.now() + 25_000;
    // Four clients, each a new connection per request, until the renewed certificate has served a while.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < deadline && (renewedAt === 0 || Date.now() - renewedAt < 1500)) {
          try {
            const res = await tlsRequest(httpsPort, { servername: name, ca: root });
            requests++;
            if (res.status !== 200) failures++;
            if (!seen.has(res.peer.fingerprint256)) {
              seen.add(res.peer.fingerprint256);
              renewedAt ||= Date.now();
            }
          } catch {
            failures++;
          }
        }
      }),
    );
    assert.ok(seen.size >= 2, `the certificate was renewed (${requests} requests)`);
    assert.equal(failures, 0, `${failures} of ${requests} requests failed`);
    assert.match(nc.stderr(), /certificate renewed/);
    await nc.stop();
  });
});
