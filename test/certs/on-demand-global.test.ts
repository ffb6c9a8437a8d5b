// The on-demand limits with a shared storage, on a real redis-server: two instances' gates share max_certs and
// the 10-orders-a-minute throttle; while Redis is away each falls back to its own counts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { OnDemandGate } from '../../src/certs/acme/on-demand.js';
import type { OnDemandRule } from '../../src/certs/acme/plan.js';
import { RedisCertificatePeers } from '../../src/cluster/cert-peers.js';
import { RedisLink } from '../../src/cluster/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';
import { startRedis, type Redis } from '../helpers/redis.js';

const log = silentLogger();
let dir: string;
let cleanup: () => void;
let redis: Redis;
let ask: http.Server;
let askUrl: string;
const links: RedisLink[] = [];

before(async () => {
  ({ dir, cleanup } = tempDir('nodecaddy-on-demand-global-'));
  redis = await startRedis(dir);
  ask = http.createServer((_req, res) => res.end());
  await new Promise<void>((resolve) => ask.listen(0, '127.0.0.1', resolve));
  askUrl = `http://127.0.0.1:${(ask.address() as AddressInfo).port}/ask`;
});
after(async () => {
  await Promise.all(links.map((l) => l.close()));
  await redis.stop();
  ask.close();
  cleanup();
});

/** The gate of one instance on the cluster `prefix`. */
async function gate(prefix: string): Promise<OnDemandGate> {
  const link = new RedisLink({ url: `redis://127.0.0.1:${redis.port}`, prefix, log });
  links.push(link);
  await waitFor(() => link.up, 10_000, 'redis connected');
  return new OnDemandGate(new RedisCertificatePeers(link, log).onDemand);
}

function rule(maxCerts: number | undefined): OnDemandRule {
  return {
    pattern: '*.example.com',
    ask: askUrl,
    byClaim: false,
    maxCerts,
    site: `https://*.example.com (${randomBytes(3).toString('hex')})`,
    ca: 'https://ca.example/dir',
    email: undefined,
    keyType: 'P256',
    dns: undefined,
  };
}

test('max_certs counts the names every instance issued', async () => {
  const prefix = `od${randomBytes(3).toString('hex')}`;
  const [a, b] = [await gate(prefix), await gate(prefix)];
  const r = rule(2);
  assert.equal(await a.refusal('one.example.com', r), undefined);
  a.issuedFor('one.example.com', r);
  assert.equal(await b.refusal('two.example.com', r), undefined);
  b.issuedFor('two.example.com', r);
  await waitFor(async () => /max_certs 2 reached/.test((await a.refusal('three.example.com', r)) ?? ''));
  assert.match((await b.refusal('three.example.com', r)) ?? '', /max_certs 2 reached/);
  // A name already counted may have its certificate again (a renewal, another instance loading it).
  assert.equal(await b.refusal('one.example.com', r), undefined);
});

test('the throttle allows 10 orders a minute across instances; with Redis away each counts its own', async () => {
  const prefix = `th${randomBytes(3).toString('hex')}`;
  const [a, b] = [await gate(prefix), await gate(prefix)];
  const r = rule(undefined);
  for (let i = 0; i < 5; i++) {
    assert.equal(await a.refusal(`a${i}.example.com`, r), undefined);
    assert.equal(await b.refusal(`b${i}.example.com`, r), undefined);
  }
  assert.match((await a.refusal('a-more.example.com', r)) ?? '', /throttled/);
  assert.match((await b.refusal('b-more.example.com', r)) ?? '', /throttled/);
  await redis.stop();
  // B took 5 of its own: 5 more locally, then its own limit.
  for (let i = 0; i < 5; i++) assert.equal(await b.refusal(`b-local${i}.example.com`, r), undefined);
  assert.match((await b.refusal('b-local-more.example.com', r)) ?? '', /throttled/);
  redis = await startRedis(dir, redis.port);
});
