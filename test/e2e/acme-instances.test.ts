// Two nodecaddy instances (separate processes, separate data folders) with the same Caddyfile and one Redis
// storage, behind HAProxy in TCP mode that balances Pebble's validation connections round robin over both: one
// instance orders, the CA's validations land on both, and the one that did not order answers from the shared
// storage (distributed solving). Exactly one order per name, and both serve the same certificate.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { orderLockName, saveIssued } from '../../src/certs/acme/stored.js';
import { RedisStorage } from '../../src/certs/redis-storage.js';
import { rootCa, signedLeaf } from '../../src/certs/x509.js';
import { RedisLink } from '../../src/cluster/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { LOCK_STALE_MS, safeKeyPart } from '../../src/certs/storage.js';
import { startWithAcme } from '../helpers/acme.js';
import { haproxySkip, startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true) || haproxySkip();
const SECRET = randomBytes(18).toString('hex');
const DAY = 24 * 3600 * 1000;

interface Instance {
  readonly name: string;
  readonly httpPort: number;
  readonly httpsPort: number;
}

describe('automatic HTTPS on two instances sharing a Redis storage', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-instances-');
  let redis: Redis;
  let pebble: Pebble;
  let haproxy: Haproxy;
  let root: string;
  const a: Instance = { name: 'a', httpPort: 0, httpsPort: 0 };
  const b: Instance = { name: 'b', httpPort: 0, httpsPort: 0 };
  const running: Nodecaddy[] = [];
  /** A server that accepts connections and never answers: a validation sent there hangs. */
  const hole = { port: 0, server: undefined as net.Server | undefined, sockets: new Set<net.Socket>() };

  before(async () => {
    writeFileSync(path.join(dir, 'index.html'), 'shared\n');
    for (const i of [a, b]) Object.assign(i, { httpPort: await freePort(), httpsPort: await freePort() });
    const [lbHttp, lbHttps] = [await freePort(), await freePort()];
    redis = await startRedis(dir);
    hole.server = net.createServer((socket) => hole.sockets.add(socket));
    await new Promise<void>((resolve) => hole.server!.listen(0, '127.0.0.1', resolve));
    hole.port = (hole.server.address() as AddressInfo).port;
    haproxy = await startHaproxy(dir, [
      { name: 'http', port: lbHttp, servers: { a: a.httpPort, b: b.httpPort, hole: hole.port } },
      { name: 'https', port: lbHttps, servers: { a: a.httpsPort, b: b.httpsPort } },
    ]);
    // Pebble validates on the balancer; no authorization reused, so every order is validated.
    pebble = await startPebble({ httpPort: lbHttp, tlsPort: lbHttps, dns: true, authzReusePercent: 0 });
    root = await pebble.root();
    // Only the test that needs an order to hang sends validations there.
    await haproxy.setState('http', 'hole', 'maint');
  });
  after(async () => {
    await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
    await haproxy?.stop();
    await pebble?.stop();
    await redis?.stop();
    for (const socket of hole.sockets) socket.destroy();
    hole.server?.close();
    cleanup();
  });

  function start(i: Instance, conf: string, prefix: string, workers: number, flags: string[]) {
    return startWithAcme(
      conf,
      {
        pebble,
        httpPort: i.httpPort,
        httpsPort: i.httpsPort,
        data: path.join(dir, `data-${i.name}`),
        workers,
      },
      ['-storage', `redis://127.0.0.1:${redis.port}/0?prefix=${prefix}`, '-cluster-secret', SECRET, ...flags],
      { cwd: dir, listeners: 2 },
    ).then((nc) => (running.push(nc), nc));
  }

  /** Holds the name's order lock, so that neither instance orders before both listen. */
  async function holdOrderLock(prefix: string, name: string): Promise<() => Promise<void>> {
    const key = `{${prefix}}/lock/${safeKeyPart(orderLockName(pebble.directoryUrl, name))}`;
    assert.equal((await redisCli(redis.port, ['SET', key, 'test', 'PX', '60000'])).toString().trim(), 'OK');
    return async () => {
      await redisCli(redis.port, ['DEL', key]);
      await redisCli(redis.port, ['PUBLISH', `{${prefix}}/events/unlock`, key]);
    };
  }

  async function fingerprint(i: Instance, name: string): Promise<string> {
    const res = await tlsRequest(i.httpsPort, { servername: name, ca: root });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'shared\n');
    return res.peer.fingerprint256;
  }

  for (const [challenge, flag, workers] of [
    ['http-01', '-disable-tls-alpn-challenge', 2],
    ['tls-alpn-01', '-disable-http-challenge', 1],
  ] as const) {
    test(`${challenge} (-workers ${workers}): one order, validations on both, the same certificate on both`, async () => {
      const name = `${challenge}.shared.example.com`;
      const prefix = `p${randomBytes(4).toString('hex')}`;
      const conf = path.join(dir, `${challenge}.Caddyfile`);
      writeFileSync(conf, `${name} {\n\troot ${dir}\n}\n`);
      const lb = challenge === 'http-01' ? 'http' : 'https';
      const before = await haproxy.sessions(lb);
      const orders = pebble.orderCount();
      const release = await holdOrderLock(prefix, name);
      const [ncA, ncB] = await Promise.all([a, b].map((i) => start(i, conf, prefix, workers, [flag])));
      await release();
      const [fa, fb] = await Promise.all(
        [a, b].map((i) => waitFor(() => fingerprint(i, name), 30_000, `${name} served by ${i.name}`)),
      );
      assert.equal(fa, fb, 'both instances serve the same certificate');
      assert.equal(pebble.orderCount(), orders + 1, 'exactly one order');
      const logs = ncA.stderr() + ncB.stderr();
      assert.equal(logs.match(/certificate obtained/g)?.length, 1, logs);
      assert.match(logs, new RegExp(`"challenge":"${challenge}"`));
      // The CA's validations reached both instances: the one that did not order answered from storage.
      const after = await haproxy.sessions(lb);
      for (const server of ['a', 'b'])
        assert.ok(after[server] > (before[server] ?? 0), `${server}: ${JSON.stringify(after)}`);
      // Nothing of the challenge is left in storage.
      const keys = (await redisCli(redis.port, ['--scan', '--pattern', `{${prefix}}/f/acme/challenges/*`]))
        .toString()
        .trim();
      assert.equal(keys, '');
      await Promise.all([ncA.stop(), ncB.stop()]);
    });
  }

  test('on demand: the first handshakes for a name on both instances at once make one order', async () => {
    const prefix = `p${randomBytes(4).toString('hex')}`;
    const ask = http.createServer((_req, res) => res.end());
    await new Promise<void>((resolve) => ask.listen(0, '127.0.0.1', resolve));
    try {
      const askUrl = `http://127.0.0.1:${(ask.address() as AddressInfo).port}/ask`;
      const conf = path.join(dir, 'on-demand.Caddyfile');
      writeFileSync(conf, `*.od.example.com {\n\troot ${dir}\n\ttls {\n\t\task ${askUrl}\n\t}\n}\n`);
      const [ncA, ncB] = await Promise.all([a, b].map((i) => start(i, conf, prefix, 1, [])));
      const orders = pebble.orderCount();
      const name = 'first.od.example.com';
      const prints = await Promise.all(
        [a, b, a, b, a, b].map((i) =>
          tlsRequest(i.httpsPort, { servername: name, ca: root }).then((r) => r.peer.fingerprint256),
        ),
      );
      assert.equal(new Set(prints).size, 1, 'one certificate');
      assert.equal(pebble.orderCount(), orders + 1, 'exactly one order');
      const logs = ncA.stderr() + ncB.stderr();
      assert.equal(logs.match(/certificate obtained/g)?.length, 1, logs);
      await Promise.all([ncA.stop(), ncB.stop()]);
    } finally {
      ask.close();
    }
  });

  test('an instance killed while it orders: the other takes the order over within the lock TTL', async () => {
    const name = 'takeover.shared.example.com';
    const prefix = `p${randomBytes(4).toString('hex')}`;
    const conf = path.join(dir, 'takeover.Caddyfile');
    writeFileSync(conf, `${name} {\n\troot ${dir}\n}\n`);
    const flag = '-disable-tls-alpn-challenge';
    // A's validations hang: A holds the order lock until it dies.
    for (const s of ['a', 'b'] as const) await haproxy.setState('http', s, 'maint');
    await haproxy.setState('http', 'hole', 'ready');
    try {
      const orders = pebble.orderCount();
      const ncA = await start(a, conf, prefix, 1, [flag]);
      await waitFor(() => /obtaining certificate/.test(ncA.stderr()), 20_000, 'A ordering');
      const ncB = await start(b, conf, prefix, 1, [flag]);
      await ncA.stop('SIGKILL');
      await haproxy.setState('http', 'hole', 'maint');
      await haproxy.setState('http', 'b', 'ready');
      // The lock of the killed holder expires (10 s); B, waiting for it, orders and serves.
      await waitFor(() => fingerprint(b, name), LOCK_STALE_MS + 20_000, `${name} served by b`);
      assert.match(ncB.stderr(), /certificate obtained/);
      assert.equal(pebble.orderCount(), orders + 2, "A's order and B's");
      await ncB.stop();
    } finally {
      await haproxy.setState('http', 'hole', 'maint');
      for (const s of ['a', 'b'] as const) await haproxy.setState('http', s, 'ready');
    }
  });

  test('a certificate another instance stores is served at once (its message), or after a reconnect (rescan)', async () => {
    const name = 'renewed.shared.example.com';
    const prefix = `p${randomBytes(4).toString('hex')}`;
    const link = new RedisLink({ url: `redis://127.0.0.1:${redis.port}`, prefix, log: silentLogger() });
    try {
      await waitFor(() => link.up, 10_000, 'redis connected');
      const storage = new RedisStorage({ link, secret: SECRET, log: silentLogger() });
      // "Another instance" is this test: it stores certificates its own CA signs, each newer than the last.
      const ca = await rootCa('another instance', 365 * DAY);
      const store = async (days: number) => {
        const pem = await signedLeaf(ca, [name], 'P256', days * DAY);
        const leaf = new X509Certificate(pem.cert);
        const issued = { ...pem, notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
        await saveIssued(storage, pebble.directoryUrl, name, issued);
        return leaf.fingerprint256;
      };
      const served = async (i: Instance) =>
        (await tlsRequest(i.httpsPort, { servername: name, ca: ca.cert })).peer.fingerprint256;
      const first = await store(30);
      const conf = path.join(dir, 'renewed.Caddyfile');
      writeFileSync(conf, `${name} {\n\troot ${dir}\n}\n`);
      const orders = pebble.orderCount();
      const nc = await start(b, conf, prefix, 2, []);
      assert.equal(await served(b), first);

      const second = await store(60);
      await link.publish('cert', JSON.stringify({ from: 'test', ca: pebble.directoryUrl, subject: name }));
      // Every worker serves it (each new connection may reach either).
      await waitFor(async () => (await served(b)) === second, 10_000, 'the announced certificate');
      for (let i = 0; i < 6; i++) assert.equal(await served(b), second);

      // Stored while the message was lost: found when the instance's link to Redis comes back.
      const third = await store(90);
      await redisCli(redis.port, ['CLIENT', 'KILL', 'TYPE', 'normal']);
      await waitFor(async () => (await served(b)) === third, 15_000, 'the certificate found by the rescan');
      assert.equal(pebble.orderCount(), orders, 'no order');
      assert.match(nc.stderr(), /certificate from another instance loaded/);
      await nc.stop();
    } finally {
      await link.close();
    }
  });
});
