// Validations for challenges this process does not hold, looked up in the shared storage (real Redis): found
// while stored, a miss remembered (one lookup for a burst of one token), only ACME-shaped tokens and names
// looked up, and no more lookups at once than the bound however many arrive together.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { RedisStorage } from '../../src/certs/redis-storage.js';
import { StoredChallenges, storingChallenges } from '../../src/certs/shared-challenges.js';
import { localSink } from '../../src/certs/sink.js';
import { RedisLink } from '../../src/cluster/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { findAlpnChallenge, findHttp01, setChallengeSource } from '../../src/core/tls/challenge-lookup.js';
import { http01Tokens, HTTP01_PREFIX } from '../../src/core/tls/managed.js';
import { selfSignedLeaf } from '../../src/certs/x509.js';
import { waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';

const log = silentLogger();
let dir: string;
let cleanup: () => void;
let redis: Redis;
let link: RedisLink;
let storage: RedisStorage;

before(async () => {
  ({ dir, cleanup } = tempDir('nodecaddy-challenge-lookup-'));
  redis = await startRedis(dir);
  link = new RedisLink({ url: `redis://127.0.0.1:${redis.port}`, prefix: 'lookup', log });
  await waitFor(() => link.up, 10_000, 'redis connected');
  storage = new RedisStorage({ link, secret: 'a test secret of the cluster', log });
  setChallengeSource(new StoredChallenges(storage));
});
after(async () => {
  setChallengeSource(undefined);
  await link.close();
  await redis.stop();
  cleanup();
});

/** How many HGETs Redis has run (each storage load is one). */
async function loads(): Promise<number> {
  const stats = (await redisCli(redis.port, ['INFO', 'commandstats'])).toString();
  return Number(/cmdstat_hget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

const token = () => randomBytes(24).toString('base64url');

test('a stored challenge is found until it is dropped; a burst for an unknown token is one lookup', async () => {
  const sink = storingChallenges(localSink, storage, log);
  const t = token();
  const challenge = { type: 'http-01', token: t, keyAuthorization: `${t}.thumbprint` } as const;
  await sink.putChallenge(challenge);
  // This process holds it too (the local sink); the lookup is for the others.
  http01Tokens.delete(t);
  assert.equal(await findHttp01(`${HTTP01_PREFIX}${t}`), `${t}.thumbprint`);
  await sink.dropChallenge(challenge);
  assert.deepEqual(await storage.list('acme/challenges'), []);

  const unknown = token();
  const before = await loads();
  const answers = await Promise.all(
    Array.from({ length: 20 }, async () => findHttp01(`${HTTP01_PREFIX}${unknown}`)),
  );
  for (let i = 0; i < 20; i++) assert.equal(await findHttp01(`${HTTP01_PREFIX}${unknown}`), undefined);
  assert.deepEqual(new Set(answers), new Set([undefined]));
  assert.equal((await loads()) - before, 1);
});

test('only ACME-shaped requests are looked up, and a crowd of them at once is bounded', async () => {
  const before = await loads();
  for (const path of ['/', `${HTTP01_PREFIX}short`, `${HTTP01_PREFIX}${token()}/x`, `${HTTP01_PREFIX}a b`])
    assert.equal(findHttp01(path), undefined, path);
  assert.equal(await findAlpnChallenge('not a name'), undefined);
  assert.equal((await loads()) - before, 0);
  const crowd = await Promise.all(
    Array.from({ length: 50 }, async () => findHttp01(`${HTTP01_PREFIX}${token()}`)),
  );
  assert.equal(crowd.filter((a) => a !== undefined).length, 0);
  const looked = (await loads()) - before;
  assert.ok(looked > 0 && looked <= 8, `${looked} lookups for 50 made-up tokens at once`);
});

test('a TLS-ALPN-01 certificate stored by another instance becomes a context here', async () => {
  const sink = storingChallenges(localSink, storage, log);
  const pem = await selfSignedLeaf(['alpn.example.com'], 'P256', 3600_000);
  const challenge = { type: 'tls-alpn-01', name: 'alpn.example.com', ...pem } as const;
  await storage.store('acme/challenges/tls-alpn-01/alpn.example.com', JSON.stringify(pem));
  assert.ok(await findAlpnChallenge('ALPN.example.com'));
  await sink.dropChallenge(challenge);
  assert.equal(await storage.load('acme/challenges/tls-alpn-01/alpn.example.com'), undefined);
});
