// The cluster while Redis is away (scale.md §6.7): a steady load on a plain site sees no failure while Redis
// is killed and restarted; the holder keeps serving its tunnel, another instance serves it from its cached
// route and answers 503 for names it never looked up, a new client is refused with 503 and keeps retrying,
// and once Redis is back (empty: no persistence) every tunnel is registered again and the new client gets in.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { get, registryEntry, startInstance, type Instance } from '../helpers/cluster.js';
import { HOLDER_CACHE_MS } from '../../src/cluster/tunnels/routes.js';
import { waitFor } from '../helpers/http.js';
import { tempDir, type Nodecaddy } from '../helpers/process.js';
import { startRedis, type Redis } from '../helpers/redis.js';
import { startClient, startTarget, type Target } from '../helpers/tunnel.js';

const PREFIX = 'ncr';

describe('tunnels across instances while Redis is away', () => {
  let tmp: { dir: string; cleanup: () => void };
  let redis: Redis;
  let target: Target;
  let a: Instance;
  let b: Instance;
  const clients: Nodecaddy[] = [];
  let load: Load | undefined;

  before(async () => {
    tmp = tempDir();
    redis = await startRedis(tmp.dir);
    target = await startTarget();
    [a, b] = await Promise.all([
      startInstance(tmp.dir, 'a', redis.port, PREFIX),
      startInstance(tmp.dir, 'b', redis.port, PREFIX),
    ]);
  });
  after(async () => {
    await load?.stop();
    await Promise.all(clients.map((c) => c.stop('SIGKILL')));
    await Promise.all([a, b].map((i) => i?.nc.stop('SIGKILL')));
    await target?.close();
    await redis?.stop();
    tmp?.cleanup();
  });

  test('Redis killed and restarted: local sites never fail, held tunnels keep serving, then are registered again', async () => {
    const alice = await startClient(a.port, 'alice', target.port);
    clients.push(alice);
    await waitFor(() => registryEntry(redis.port, PREFIX, 'alice'), 5000, 'alice registered');
    // b looks alice up once: its cached route carries it through the outage.
    assert.equal((await get(b.port, 'alice.tunnel.localhost', '/echo')).status, 200);
    const lookedUp = Date.now();

    const running = startLoad([a.port, b.port]);
    load = running;
    await waitFor(() => running.ok > 50, 10_000, 'load running');
    await redis.stop();
    const okAtKill = running.ok;

    assert.equal((await get(a.port, 'alice.tunnel.localhost', '/echo')).status, 200, 'the holder');
    const cached = await get(b.port, 'alice.tunnel.localhost', '/echo');
    assert.equal(cached.status, 200, `cached route: ${cached.body} ${b.nc.stderr()}`);
    const unknown = await get(b.port, 'nobody.tunnel.localhost', '/');
    assert.equal(unknown.status, 503);
    assert.match(unknown.body, /tunnel registry is unreachable/);
    const erin = await startClient(b.port, 'erin', target.port, { wait: false });
    clients.push(erin);
    await waitFor(
      () => /refused: the tunnel registry is unreachable.*reconnecting in/.test(erin.stdout()),
      10_000,
      'erin refused with 503 and retrying',
    );
    assert.ok(!erin.stdout().includes('Forwarding'));
    // Past the time b trusts its cached route without asking Redis, it still serves from it (the grace).
    while (Date.now() < lookedUp + HOLDER_CACHE_MS + 500) {
      const stale = await get(b.port, 'alice.tunnel.localhost', '/echo');
      assert.equal(stale.status, 200, `route kept through the outage: ${stale.body}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    assert.ok(running.ok > okAtKill, 'the load went on while Redis was away');
    redis = await startRedis(tmp.dir, redis.port);
    // Redis came back empty: the holder writes its name again as soon as it reconnects.
    await waitFor(
      async () => (await registryEntry(redis.port, PREFIX, 'alice'))?.i === 'a',
      8_000,
      'alice registered again',
    );
    await waitFor(() => erin.stdout().includes('Forwarding'), 10_000, 'erin connected once Redis is back');
    assert.equal((await registryEntry(redis.port, PREFIX, 'erin'))?.i, 'b');
    assert.equal((await get(a.port, 'erin.tunnel.localhost', '/echo')).status, 200);
    assert.equal((await get(b.port, 'alice.tunnel.localhost', '/echo')).status, 200);

    const { ok, failed } = await running.stop();
    load = undefined;
    assert.deepEqual(failed, [], `failed requests of ${ok + failed.length}`);
    assert.match(a.nc.stderr() + b.nc.stderr(), /redis unreachable/);
  });
});

interface Load {
  ok: number;
  failed: string[];
  stop(): Promise<{ ok: number; failed: string[] }>;
}

/** Keep-alive GETs of the plain site on every port, two at a time per port, until stopped. */
function startLoad(ports: number[]): Load {
  const state = { ok: 0, failed: [] as string[], running: true };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const loop = async (port: number) => {
    while (state.running) {
      const res = await get(port, 'local.localhost', '/', agent);
      if (res.status === 200) state.ok++;
      else {
        state.failed.push(`${port}: ${res.status}`);
        // A server that is gone fails at once: no busy loop.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const loops = ports.flatMap((p) => [loop(p), loop(p)]);
  return {
    get ok() {
      return state.ok;
    },
    get failed() {
      return state.failed;
    },
    async stop() {
      state.running = false;
      await Promise.all(loops);
      agent.destroy();
      return { ok: state.ok, failed: state.failed };
    },
  };
}
