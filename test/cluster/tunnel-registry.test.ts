// The tunnel registry's scripts against a real redis-server, two registries standing for two instances:
// claims (free, taken, the same client taking over, a dead holder, max_sessions across instances), renewals
// that restore a lost key or close a session whose name went elsewhere, releases that only delete their own
// entry, and claims while Redis is away.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisLink } from '../../src/cluster/redis.js';
import { RelayClient } from '../../src/cluster/relay/client.js';
import { TunnelRegistry } from '../../src/cluster/tunnels/registry.js';
import { silentLogger } from '../../src/core/logger.js';
import type { ClusterName } from '../../src/middleware/tunnel/cluster.js';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';

const SITE = '*.tunnel.localhost#s1';
const PREFIX = 'reg';

function name(label: string, token: string, secretId = 'sid'): ClusterName {
  return { siteKey: SITE, host: `${label}.tunnel.localhost`, token, secretId };
}

describe('tunnel registry in Redis', () => {
  let tmp: { dir: string; cleanup: () => void };
  let redis: Redis;
  const links: RedisLink[] = [];
  const registries: TunnelRegistry[] = [];

  /** A registry of instance `id` whose relay address nobody listens on (an eviction there fails fast). */
  async function instance(id: string): Promise<TunnelRegistry> {
    const log = silentLogger();
    const link = new RedisLink({ url: `redis://127.0.0.1:${redis.port}`, prefix: PREFIX, log });
    links.push(link);
    const registry = new TunnelRegistry({
      redis: link,
      relay: new RelayClient({ secret: 'cluster-secret-0123456789', log }),
      instanceId: id,
      address: `127.0.0.1:${await freePort()}`,
      log,
    });
    registries.push(registry);
    registry.start();
    await waitFor(async () => (await cli('exists', `{${PREFIX}}/inst/${id}`)) === '1', 5000, `inst/${id}`);
    return registry;
  }

  const cli = async (...args: string[]) => (await redisCli(redis.port, ['--raw', ...args])).toString().trim();
  const entry = async (label: string) => {
    const raw = await cli('get', `{${PREFIX}}/t/${SITE}/${label}.tunnel.localhost`);
    return raw ? (JSON.parse(raw) as { i: string; t: string }) : undefined;
  };
  /** Every client reconnects: each registry renews at once (its onReady), as after a Redis restart. */
  const reconnectAll = () => cli('client', 'kill', 'type', 'normal');

  before(async () => {
    tmp = tempDir();
    redis = await startRedis(tmp.dir);
  });
  after(async () => {
    await Promise.all(registries.map((r) => r.stop()));
    await Promise.all(links.map((l) => l.close()));
    await redis?.stop();
    tmp?.cleanup();
  });

  test('one holder per name across instances; the same client takes its name over; renew-or-drop', async () => {
    const [a, b] = [await instance('a'), await instance('b')];
    const lostOnA: string[] = [];
    assert.equal(await a.claim(name('alice', 'token-1'), 5, false, (r) => lostOnA.push(r)), 'ok');
    const held = await entry('alice');
    assert.deepEqual([held?.i, held?.t], ['a', 'token-1']);
    assert.equal(await b.claim(name('alice', 'token-2'), 5, false, () => undefined), 'taken');
    // The same client reconnecting to b: a is asked to let go (it cannot be reached here), b takes the name.
    assert.equal(await b.claim(name('alice', 'token-1'), 5, false, () => undefined), 'ok');
    assert.equal((await entry('alice'))?.i, 'b');
    // a's release of its old session does not delete b's entry.
    a.release(name('alice', 'token-1'));
    await a.stop();
    assert.equal((await entry('alice'))?.i, 'b');
    a.start();
    // A session a still believes it holds is closed by its next renewal.
    assert.equal(await a.claim(name('carol', 'token-3'), 5, false, (r) => lostOnA.push(r)), 'ok');
    const b2 = await instance('b2');
    await cli(
      'set',
      `{${PREFIX}}/t/${SITE}/carol.tunnel.localhost`,
      JSON.stringify({ i: 'b2', a: 'x', t: 't', s: 'sid', o: 'o' }),
    );
    assert.equal(lostOnA.length, 0);
    await reconnectAll();
    await waitFor(() => lostOnA.length === 1, 5000, 'carol closed on a');
    assert.match(lostOnA[0], /taken elsewhere/);
    await b2.stop();
  });

  test('a holder whose instance is gone frees the name at once', async () => {
    const d = await instance('d');
    const e = await instance('e');
    assert.equal(await d.claim(name('dave', 'token-d'), 5, false, () => undefined), 'ok');
    assert.equal(await e.claim(name('dave', 'token-e'), 5, false, () => undefined), 'taken');
    await d.stop();
    await cli('del', `{${PREFIX}}/inst/d`);
    assert.equal(await e.claim(name('dave', 'token-e'), 5, false, () => undefined), 'ok');
    assert.equal((await entry('dave'))?.i, 'e');
  });

  test('max_sessions counts a secret’s names on every instance; a release makes room', async () => {
    const f = await instance('f');
    const g = await instance('g');
    assert.equal(await f.claim(name('n1', 'tok-1', 'limited'), 2, false, () => undefined), 'ok');
    assert.equal(await g.claim(name('n2', 'tok-2', 'limited'), 2, false, () => undefined), 'ok');
    assert.equal(
      await f.claim(name('n3', 'tok-3', 'limited'), 2, false, () => undefined),
      'too-many-sessions',
    );
    // The same name claimed again by its client is not a new session.
    assert.equal(await g.claim(name('n2', 'tok-2', 'limited'), 2, false, () => undefined), 'ok');
    g.release(name('n2', 'tok-2', 'limited'));
    await waitFor(async () => !(await entry('n2')), 5000, 'n2 released');
    assert.equal(await f.claim(name('n3', 'tok-3', 'limited'), 2, false, () => undefined), 'ok');
  });

  test('an entry Redis lost is written again by the next renewal', async () => {
    const h = await instance('h');
    assert.equal(await h.claim(name('hana', 'token-h'), 5, false, () => undefined), 'ok');
    await cli('del', `{${PREFIX}}/t/${SITE}/hana.tunnel.localhost`);
    await reconnectAll();
    await waitFor(async () => (await entry('hana'))?.i === 'h', 5000, 'hana restored');
  });

  test('a TCP port is held by one instance at a time, renewed with its name and free again once released', async () => {
    const p = await instance('p');
    const q = await instance('q');
    const pat = name('pat', 'token-p');
    const quin = name('quin', 'token-q');
    const port = async (n: number) => {
      const raw = await cli('get', `{${PREFIX}}/tp/${SITE}/${n}`);
      return raw ? (JSON.parse(raw) as { i: string; h: string; p: number }) : undefined;
    };
    assert.equal(await p.claimPort(pat, 40001), 'ok');
    const held = await port(40001);
    assert.deepEqual([held?.i, held?.h, held?.p], ['p', 'pat.tunnel.localhost', 40001]);
    assert.equal(await q.claimPort(quin, 40001), 'taken');
    assert.equal(await q.claimPort(quin, 40002), 'ok');
    // Lost by Redis (a restart): written again at the renewal on reconnect.
    await cli('del', `{${PREFIX}}/tp/${SITE}/40001`);
    await reconnectAll();
    await waitFor(async () => (await port(40001))?.i === 'p', 8000, 'port 40001 registered again');
    p.releasePort(pat, 40001);
    await waitFor(async () => ((await port(40001)) ? undefined : true), 5000, 'port 40001 released');
    assert.equal(await q.claimPort(quin, 40001), 'ok');
    // A release by someone else's name does not delete q's port.
    p.releasePort(pat, 40002);
    assert.equal((await port(40002))?.i, 'q');
  });

  test('while Redis is away a new claim is unavailable; the same client back on the same process keeps its name', async () => {
    const k = await instance('k');
    assert.equal(await k.claim(name('kim', 'token-k'), 5, false, () => undefined), 'ok');
    await redis.stop();
    assert.equal(await k.claim(name('lee', 'token-l'), 5, false, () => undefined), 'unavailable');
    assert.equal(await k.claim(name('kim', 'token-k'), 5, true, () => undefined), 'ok');
    redis = await startRedis(tmp.dir, redis.port);
    // Back (and empty): kim is registered again by the renewal on reconnect.
    await waitFor(async () => (await entry('kim'))?.i === 'k', 8000, 'kim registered again');
  });
});
