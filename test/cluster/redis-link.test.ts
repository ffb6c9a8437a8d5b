// RedisLink against a real redis-server: commands under the hash-tagged prefix, a command fails within its
// deadline (never queues) while Redis is away or hangs, and the link comes back by itself, telling onReady
// listeners (who re-register what a restarted Redis lost) and keeping its subscriptions.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RedisLink, RedisUnavailable, redactUrl } from '../../src/cluster/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';

let dir: ReturnType<typeof tempDir>;
let redis: Redis;
let link: RedisLink;
let readies = 0;

before(async () => {
  dir = tempDir();
  redis = await startRedis(dir.dir);
  link = new RedisLink({
    url: `redis://127.0.0.1:${redis.port}/0?prefix=t1`,
    prefix: 't1',
    log: silentLogger(),
  });
  link.onReady(() => readies++);
  await waitFor(() => link.up, 5000, 'redis link up');
});

after(async () => {
  await link.close();
  await redis.stop();
  dir.cleanup();
});

/** How long a promise took to settle, and whether it rejected with RedisUnavailable. */
async function timed(p: Promise<unknown>): Promise<{ ms: number; unavailable: boolean }> {
  const started = Date.now();
  try {
    await p;
    return { ms: Date.now() - started, unavailable: false };
  } catch (err) {
    return { ms: Date.now() - started, unavailable: err instanceof RedisUnavailable };
  }
}

test('keys live under the hash-tagged prefix', async () => {
  await link.run('set', (c) => c.set(link.key('a', 'b'), 'v'));
  assert.equal((await redisCli(redis.port, ['GET', '{t1}/a/b'])).toString().trim(), 'v');
});

test('a command while Redis hangs fails at its deadline instead of waiting', async () => {
  redis.child.kill('SIGSTOP');
  try {
    const r = await timed(link.run('get', (c) => c.get(link.key('a', 'b'))));
    assert.equal(r.unavailable, true);
    // The deadline is 500 ms; without it node-redis would wait for the answer as long as Redis hangs.
    assert.ok(r.ms < 3000, `took ${r.ms} ms`);
  } finally {
    redis.child.kill('SIGCONT');
  }
});

test('Redis killed: commands fail at once; restarted: the link is back, tells onReady, keeps its subscriptions', async () => {
  const got: string[] = [];
  await link.subscribe('news', (m) => got.push(m));
  await waitFor(
    async () => (await link.publish('news', 'one')) && got.includes('one'),
    5000,
    'first message',
  );
  const before = readies;
  const port = redis.port;
  await redis.stop();
  await waitFor(() => !link.up, 5000, 'link down');
  const r = await timed(link.run('get', (c) => c.get(link.key('a', 'b'))));
  assert.equal(r.unavailable, true);
  assert.ok(r.ms < 1000, `took ${r.ms} ms`);
  assert.equal(await link.publish('news', 'lost'), false);
  redis = await startRedis(dir.dir, port);
  await waitFor(() => link.up && readies > before, 10_000, 'link back');
  await waitFor(
    async () => (await link.publish('news', 'two')) && got.includes('two'),
    5000,
    'message after restart',
  );
  assert.equal(
    await link.run('get', (c) => c.get(link.key('a', 'b'))),
    null,
    'a restarted Redis lost its data',
  );
});

test('passwords never reach logs', () => {
  assert.equal(redactUrl('redis://user:s3cret@h:6379/0'), 'redis://user:***@h:6379/0');
  assert.equal(redactUrl('rediss://:s3cret@h:6379'), 'rediss://:***@h:6379');
  assert.equal(redactUrl('redis://h:6379/0'), 'redis://h:6379/0');
});
