// Upstreams seen through the admin endpoint, with a real backend that goes away and comes back: the healthy
// gauge and /upstreams follow the health checks, the responses and failures are counted, and the change is
// logged once each way however many workers probe it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admin, adminPort, sample, scrape } from '../helpers/admin.js';
import { request, waitFor } from '../helpers/http.js';
import { phpFpmSkip, startPhpFpm } from '../helpers/phpfpm.js';
import { freePort, startNodecaddy, tempDir } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;

before(() => ({ dir, cleanup } = tempDir()));
after(() => cleanup?.());

interface Row {
  address: string;
  healthy: boolean;
  num_requests: number;
  fails: number;
  failures_total: number;
  requests_total: number;
}

/** A backend on a fixed port that can be stopped and started again. */
function backend(port: number) {
  const server = http.createServer((req, res) => res.end(req.url === '/health' ? 'ok' : 'hello'));
  return {
    start: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve())),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

for (const workers of [2, 1]) {
  describe(`upstreams with -workers ${workers}`, () => {
    test('a backend that dies and comes back: healthy gauge, /upstreams, counts, one log line each way', async () => {
      const [port, backendPort, deadPort] = [await freePort(), await freePort(), await freePort()];
      const app = `http://127.0.0.1:${backendPort}`;
      const dead = `http://127.0.0.1:${deadPort}`;
      const conf = path.join(dir, `Caddyfile.${workers}`);
      writeFileSync(
        conf,
        `:${port} {\n` +
          `\tproxy /app ${app} {\n\t\thealth_check /health\n\t\thealth_check_interval 100ms\n\t}\n` +
          `\tproxy /dead ${dead}\n}\n`,
      );
      const server = backend(backendPort);
      await server.start();
      const nc = await startNodecaddy(['-conf', conf, '-workers', String(workers), '-admin', '127.0.0.1:0']);
      try {
        const at = await adminPort(nc);
        const rows = async () => JSON.parse((await admin(at, '/upstreams')).body) as Row[];
        const row = async (address: string) => (await rows()).find((r) => r.address === address);
        const healthy = async (address: string) =>
          (await scrape(at)).get(sample('nodecaddy_upstream_healthy', { upstream: address }));

        await waitFor(
          async () => (await row(app))?.healthy === true,
          10_000,
          'the app upstream listed healthy',
        );
        assert.deepEqual(
          (await rows()).map((r) => r.address).sort(),
          [app, dead].sort(),
          'both upstreams are listed',
        );
        for (let i = 0; i < 5; i++) assert.equal((await request(port, '/app')).body, 'hello');
        assert.equal((await request(port, '/dead')).status, 502);
        const samples = await scrape(at);
        assert.equal(
          samples.get(sample('nodecaddy_upstream_requests_total', { upstream: app, code: '200' })),
          5,
        );
        assert.equal(samples.get(sample('nodecaddy_upstream_failures_total', { upstream: dead })), 1);
        assert.equal(samples.get(sample('nodecaddy_upstream_failures_total', { upstream: app })), 0);
        assert.equal(samples.get(sample('nodecaddy_upstream_healthy', { upstream: app })), 1);
        assert.deepEqual(await row(app), {
          address: app,
          healthy: true,
          num_requests: 0,
          fails: 0,
          failures_total: 0,
          requests_total: 5,
        });

        await server.stop();
        await waitFor(async () => (await healthy(app)) === 0, 10_000, 'the healthy gauge at 0');
        assert.equal((await row(app))?.healthy, false);
        assert.equal((await request(port, '/app')).status, 502);

        await server.start();
        await waitFor(async () => (await healthy(app)) === 1, 10_000, 'the healthy gauge back at 1');
        await waitFor(async () => (await row(app))?.healthy === true, 10_000, '/upstreams healthy again');
        assert.equal((await request(port, '/app')).body, 'hello');

        const lines = nc.stderr().split('\n');
        const down = lines.filter((l) => l.includes('upstream is down'));
        const up = lines.filter((l) => l.includes('upstream is up again'));
        assert.equal(down.length, 1, down.join('\n'));
        assert.equal(up.length, 1, up.join('\n'));
        assert.match(down[0], new RegExp(`"upstream":"${app}"`));
        assert.match(down[0], /"level":"warn"/);
      } finally {
        await nc.stop();
        await server.stop();
      }
    });
  });
}

describe('fastcgi upstreams', { skip: phpFpmSkip() }, () => {
  test('a php-fpm upstream is listed and its responses counted', async () => {
    const fpm = await startPhpFpm();
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.php');
    writeFileSync(path.join(dir, 'hello.php'), '<?php echo "hi";');
    writeFileSync(conf, `:${port} {\n\troot ${dir}\n\tfastcgi / 127.0.0.1:${fpm.port} php\n}\n`);
    const nc = await startNodecaddy(['-conf', conf, '-workers', '2', '-admin', '127.0.0.1:0']);
    try {
      const at = await adminPort(nc);
      for (let i = 0; i < 3; i++) assert.equal((await request(port, '/hello.php')).body, 'hi');
      const address = `127.0.0.1:${fpm.port}`;
      const rows = JSON.parse((await admin(at, '/upstreams')).body) as Row[];
      assert.deepEqual(rows, [
        { address, healthy: true, num_requests: 0, fails: 0, failures_total: 0, requests_total: 3 },
      ]);
      const samples = await scrape(at);
      assert.equal(
        samples.get(sample('nodecaddy_upstream_requests_total', { upstream: address, code: '200' })),
        3,
      );
    } finally {
      await nc.stop();
      await fpm.stop();
    }
  });
});
