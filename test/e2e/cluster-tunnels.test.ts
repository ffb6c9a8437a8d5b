// Tunnels across instances: three nodecaddy instances on loopback (one with -workers 2), each with its own
// run dir, sharing a Redis registry; HAProxy in TCP mode in front; a real `nodecaddy tunnel` client through
// HAProxy. Visitors at every instance reach the client (HTTP, WebSocket, SSE), names and max_sessions hold
// across instances, the relay refuses strangers, and a killed holder's client is served again elsewhere.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import {
  get,
  registryEntry,
  startHaproxy,
  startInstance,
  type Haproxy,
  type Instance,
} from '../helpers/cluster.js';
import { admin, adminPort, sample, scrape } from '../helpers/admin.js';
import { waitFor } from '../helpers/http.js';
import { tempDir, type Nodecaddy } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';
import { SECRET, startClient, startTarget, text, viaTunnel, type Target } from '../helpers/tunnel.js';

const PREFIX = 'nct';

describe('tunnels across instances', () => {
  let tmp: { dir: string; cleanup: () => void };
  let redis: Redis;
  let target: Target;
  let instances: Instance[] = [];
  let lb: Haproxy;
  const clients: Nodecaddy[] = [];
  const client = (...a: Parameters<typeof startClient>) =>
    startClient(...a).then((c) => (clients.push(c), c));

  before(async () => {
    tmp = tempDir();
    redis = await startRedis(tmp.dir);
    target = await startTarget();
    instances = await Promise.all([
      startInstance(tmp.dir, 'a', redis.port, PREFIX),
      startInstance(tmp.dir, 'b', redis.port, PREFIX),
      startInstance(tmp.dir, 'c', redis.port, PREFIX, { workers: 2, admin: true }),
    ]);
    lb = await startHaproxy(tmp.dir, instances);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.stop('SIGKILL')));
    await lb?.stop();
    await Promise.all(instances.map((i) => i.nc.stop('SIGKILL')));
    await target?.close();
    await redis?.stop();
    tmp?.cleanup();
  });

  test('a client through HAProxy serves visitors at every instance: HTTP, WebSocket, SSE', async () => {
    await client(lb.port, 'alice', target.port);
    const holder = await waitFor(() => registryEntry(redis.port, PREFIX, 'alice'), 5000, 'registry entry');
    assert.ok(instances.some((i) => i.id === holder.i && holder.a === `127.0.0.1:${i.relayPort}`));
    for (const i of instances) {
      const res = await viaTunnel(i.port, 'alice', `/echo?via=${i.id}`);
      assert.equal(res.statusCode, 200, `via ${i.id}: ${await text(res)}`);
      await text(res);
      assert.ok(target.seen.includes(`/echo?via=${i.id}`));
      // The visitor's address, once: the holder does not append the relaying instance's.
      assert.equal(res.headers['x-seen-xff'], '127.0.0.1');
      assert.equal(res.headers['x-seen-xfh'], `alice.tunnel.localhost:${i.port}`);
      await websocketEchoes(i.port);
      await sseStreams(i.port);
    }
    for (let n = 0; n < 6; n++)
      assert.equal((await get(lb.port, `alice.tunnel.localhost:${lb.port}`, '/echo')).status, 200);
  });

  test('a name held by a worker of a -workers 2 instance is reached from the other instances', async () => {
    const c = instances[2];
    const dora = await client(c.port, 'dora', target.port);
    assert.equal((await waitFor(() => registryEntry(redis.port, PREFIX, 'dora'), 5000, 'entry')).i, 'c');
    // The relay listener is shared by both workers: some of these land on the one without the session.
    for (const i of [...instances, ...instances, ...instances]) {
      const res = await get(i.port, `dora.tunnel.localhost:${i.port}`, '/echo');
      assert.equal(res.status, 200, `via ${i.id}: ${res.body}`);
    }
    for (const i of instances.slice(0, 2)) for (let n = 0; n < 3; n++) await websocketEchoes(i.port, 'dora');
    // c's admin endpoint says which instance holds its tunnels; its metrics count the claim.
    const at = await adminPort(c.nc);
    const rows = JSON.parse((await admin(at, '/tunnels')).body) as { tunnel: string; instance?: string }[];
    assert.deepEqual(
      rows.map((r) => [r.tunnel, r.instance]),
      [['dora.tunnel.localhost', 'c']],
    );
    const claims = (await scrape(at)).get(sample('nodecaddy_tunnel_registry_claims_total', { result: 'ok' }));
    assert.ok(claims !== undefined && claims >= 1, `claims ${claims}`);
    await dora.stop();
    await waitFor(async () => !(await registryEntry(redis.port, PREFIX, 'dora')), 5000, 'dora released');
  });

  test('a name cannot be taken by another client on another instance (409); max_sessions counts across instances (429)', async () => {
    const holder = (await registryEntry(redis.port, PREFIX, 'alice'))!;
    const [other, third] = instances.filter((i) => i.id !== holder.i);
    const thief = await client(other.port, 'alice', target.port, { wait: false });
    await waitFor(() => /in use by another tunnel client/.test(thief.stdout()), 10_000, 'thief refused');
    await thief.stop();
    assert.equal((await registryEntry(redis.port, PREFIX, 'alice'))!.i, holder.i);
    // max_sessions 3 per secret: alice, bob and dave hold three names on three instances; erin is the fourth.
    const bob = await client(other.port, 'bob', target.port);
    const dave = await client(third.port, 'dave', target.port);
    const erin = await client(holder.i === 'a' ? instances[1].port : instances[0].port, 'erin', target.port, {
      wait: false,
    });
    await waitFor(
      () => /already holds 3 tunnels across the cluster/.test(erin.stdout()),
      10_000,
      `erin refused: ${erin.stdout()}`,
    );
    // A name given back makes room at once (erin retries with its backoff).
    await bob.stop();
    await waitFor(() => erin.stdout().includes('Forwarding'), 10_000, 'erin connected after bob left');
    await Promise.all([erin.stop(), dave.stop()]);
  });

  test('the relay refuses requests without the cluster secret', async () => {
    for (const i of instances) {
      const path = `/echo?forged=${i.id}`;
      const headers = {
        host: 'alice.tunnel.localhost',
        // The real site key (host pattern # secret ids): a stranger who knows the Caddyfile knows it.
        'x-nodecaddy-tunnel-relay-site': encodeURIComponent(
          `*.tunnel.localhost#${createHash('sha256').update(SECRET).digest('hex').slice(0, 16)}`,
        ),
        'x-nodecaddy-tunnel-relay-auth': 'not-the-key',
      };
      assert.notEqual(await http1(i.relayPort, path, headers), 200);
      assert.notEqual(await h2c(i.relayPort, path, headers), 200);
      assert.ok(!target.seen.includes(path), `a forged request reached the client via ${i.id}`);
    }
  });

  test('kill -9 of the holder: the client reconnects through HAProxy and visitors are served again', async () => {
    const holder = (await registryEntry(redis.port, PREFIX, 'alice'))!;
    const dead = instances.find((i) => i.id === holder.i)!;
    const survivors = instances.filter((i) => i !== dead);
    // Every survivor has a route cached to the holder (the case where staleness would hurt).
    for (const i of survivors)
      assert.equal((await get(i.port, 'alice.tunnel.localhost', '/echo')).status, 200);
    dead.nc.child.kill('SIGKILL');
    await dead.nc.exited;
    await waitFor(
      async () => (await get(lb.port, 'alice.tunnel.localhost', '/echo')).status === 200,
      10_000,
      'alice served through HAProxy after the holder died',
    );
    for (const i of survivors) {
      await waitFor(
        async () => (await get(i.port, 'alice.tunnel.localhost', '/echo')).status === 200,
        10_000,
        `alice via ${i.id}`,
      );
    }
    const now = (await registryEntry(redis.port, PREFIX, 'alice'))!;
    assert.ok(
      survivors.some((i) => i.id === now.i),
      `the registry names ${now.i}`,
    );
  });

  test('a graceful stop gives the names back and removes the instance from the registry', async () => {
    const holder = (await registryEntry(redis.port, PREFIX, 'alice'))!;
    const stopping = instances.find((i) => i.id === holder.i)!;
    assert.equal(await stopping.nc.stop('SIGTERM'), 0);
    const instKey = `{${PREFIX}}/inst/${stopping.id}`;
    assert.equal((await redisCli(redis.port, ['exists', instKey])).toString().trim(), '0');
    // The client comes back through HAProxy on the instance left, or has not yet: never the stopped one.
    assert.notEqual((await registryEntry(redis.port, PREFIX, 'alice'))?.i, stopping.id);
  });

  async function websocketEchoes(port: number, name = 'alice'): Promise<void> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { host: `${name}.tunnel.localhost:${port}` },
    });
    const messages: string[] = [];
    ws.on('message', (d: Buffer) => messages.push(d.toString('utf8')));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(`ping ${port}`);
    await waitFor(() => messages.length === 2, 5000, 'greeting and echo');
    assert.equal(messages[1], `ping ${port}`);
    ws.close();
    await new Promise((r) => ws.once('close', r));
  }

  async function sseStreams(port: number): Promise<void> {
    const before = target.sseNext.length;
    const res = await viaTunnel(port, 'alice', '/sse', { headers: { accept: 'text/event-stream' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    await waitFor(() => target.sseNext.length > before, 5000, 'SSE stream at the target');
    const send = target.sseNext[before];
    let received = '';
    res.setEncoding('utf8').on('data', (d: string) => (received += d));
    for (const n of [1, 2]) {
      send(`event-${n}`);
      // Each event reaches the visitor before the next is sent: no hop buffers it.
      await waitFor(() => received.endsWith(`data: event-${n}\n\n`), 5000, `event ${n} via ${port}`);
    }
    send('end');
    await new Promise((r) => res.once('end', r));
  }
});

/** Status of an HTTP/1.1 request (0: the connection was refused or cut). */
function http1(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false });
    req.setTimeout(5000, () => req.destroy());
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Status of an HTTP/2 request without TLS, prior knowledge (0: refused, cut or not HTTP/2). */
function h2c(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const done = (status: number) => {
      session.destroy();
      resolve(status);
    };
    session.on('error', () => done(0));
    session.setTimeout(5000, () => done(0));
    const { host, ...rest } = headers;
    const req = session.request({ ':path': path, ':authority': host, ...rest });
    req.on('response', (h) => done(Number(h[':status'])));
    req.on('error', () => done(0));
    req.end();
  });
}
