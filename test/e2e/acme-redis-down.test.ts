// An instance on a Redis storage while Redis is away: it starts and serves its plain sites, logs the outage
// once, orders nothing (the order lock is in Redis) and fails its order attempts at once; when Redis comes
// back it obtains the certificate at once instead of after its backoff. Requests shaped like ACME validations then
// cost Redis one lookup per token for a burst (workers ask their primary), other requests none.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startWithAcme } from '../helpers/acme.js';
import { request, waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true);

describe('automatic HTTPS on a Redis storage while Redis is down', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-redis-down-');
  let redis: Redis | undefined;
  let pebble: Pebble | undefined;
  let nc: Nodecaddy | undefined;
  let httpPort: number;
  let httpsPort: number;
  let root: string;
  const ask = http.createServer((_req, res) => res.end());
  let askUrl: string;

  before(async () => {
    await new Promise<void>((resolve) => ask.listen(0, '127.0.0.1', resolve));
    askUrl = `http://127.0.0.1:${(ask.address() as AddressInfo).port}/ask`;
  });

  after(async () => {
    await nc?.stop('SIGKILL');
    await pebble?.stop();
    await redis?.stop();
    ask.close();
    cleanup();
  });

  test('serves plain sites, orders nothing, then obtains the certificate once Redis is up', async () => {
    httpPort = await freePort();
    httpsPort = await freePort();
    const redisPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true });
    root = await pebble.root();
    writeFileSync(path.join(dir, 'index.html'), 'up\n');
    const conf = path.join(dir, 'Caddyfile');
    writeFileSync(
      conf,
      `down.example.com {\n\troot ${dir}\n}\nhttp://plain.example.com {\n\troot ${dir}\n}\n` +
        `*.od.example.com {\n\troot ${dir}\n\ttls {\n\t\task ${askUrl}\n\t}\n}\n`,
    );
    nc = await startWithAcme(
      conf,
      { pebble, httpPort, httpsPort, data: path.join(dir, 'data'), workers: 2 },
      [
        '-storage',
        `redis://127.0.0.1:${redisPort}/0?prefix=down`,
        '-cluster-secret',
        randomBytes(18).toString('hex'),
        '-disable-tls-alpn-challenge',
      ],
      { cwd: dir, listeners: 2 },
    );
    const plain = await request(httpPort, '/', { headers: { host: 'plain.example.com' } });
    assert.equal(plain.status, 200);
    assert.equal(plain.body, 'up\n');
    // Three attempts failed at once (2.6 s and 5.2 s apart): the next would be 10.4 s away.
    await waitFor(() => /retrying in 10\.4 s/.test(nc!.stderr()), 20_000, 'three failed attempts');
    assert.match(nc.stderr(), /obtaining a certificate failed: redis unavailable/);
    assert.equal(nc.stderr().match(/redis unreachable/g)?.length, 1, nc.stderr());
    assert.equal(pebble.orderCount(), 0);

    redis = await startRedis(dir, redisPort);
    // At once, not after the backoff.
    const res = await waitFor(
      () => tlsRequest(httpsPort, { servername: 'down.example.com', ca: root }),
      9_000,
      'the certificate once Redis is up',
    );
    assert.equal(res.status, 200);
    assert.equal(pebble.orderCount(), 1);
    assert.match(nc.stderr(), /redis reachable again/);
  });

  test('a burst of validation-shaped requests is one lookup per worker; other requests none', async () => {
    assert.ok(redis && nc, 'the previous test ran');
    const loads = async () =>
      Number(
        /cmdstat_hget:calls=(\d+)/.exec(
          (await redisCli(redis!.port, ['INFO', 'commandstats'])).toString(),
        )?.[1],
      );
    const before = await loads();
    const token = randomBytes(24).toString('base64url');
    for (let i = 0; i < 30; i++) {
      const res = await request(httpPort, `/.well-known/acme-challenge/${token}`, {
        headers: { host: 'plain.example.com' },
      });
      assert.equal(res.status, 404);
    }
    for (const p of ['/.well-known/acme-challenge/short', '/index.html', '/.well-known/other']) {
      for (let i = 0; i < 10; i++) await request(httpPort, p, { headers: { host: 'plain.example.com' } });
    }
    const looked = (await loads()) - before;
    // Each worker remembers its miss for 3 s: at most one lookup per worker, two if a slow run outlasts it.
    assert.ok(looked >= 1 && looked <= 4, `${looked} lookups`);
  });

  test('Redis down again: held certificates serve, a new name on demand is refused at once and ordered once it is back', async () => {
    assert.ok(redis && nc && pebble, 'the first test ran');
    await redis.stop();
    const held = await tlsRequest(httpsPort, { servername: 'down.example.com', ca: root });
    assert.equal(held.status, 200);
    await assert.rejects(tlsRequest(httpsPort, { servername: 'new.od.example.com', ca: root }));
    assert.equal(pebble.orderCount(), 1);
    redis = await startRedis(dir, redis.port);
    // Not held back by the 5 minutes a name waits after the CA refused it: Redis was away, not the CA.
    const res = await waitFor(
      () => tlsRequest(httpsPort, { servername: 'new.od.example.com', ca: root }),
      10_000,
      'the name on demand once Redis is back',
    );
    assert.equal(res.status, 200);
    assert.equal(pebble.orderCount(), 2);
  });
});
