// TCP tunnels across instances: three nodecaddy instances on loopback sharing a Redis registry, each bound to
// its own address (127.0.0.1, .2, .3) so that all of them can listen on the same public port; the real
// `nodecaddy tunnel -tcp` connected to one of them. The tunnel's port answers on every instance (relayed to
// the holder), is registered cluster-wide (a client at another instance gets another port), and is free
// everywhere once the client stops.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLUSTER_SECRET } from '../helpers/cluster.js';
import { waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';
import { SECRET, startClient } from '../helpers/tunnel.js';

const PREFIX = 'nctcp';
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

interface Node {
  host: string;
  port: number;
  nc: Nodecaddy;
}

/** A TCP echo that answers the visitor's FIN with its own (half-close passes both ways). */
async function startEcho(): Promise<{ port: number; open: Set<net.Socket>; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    open,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Sends `text`, half-closes, and reads until the far end closes: the echo (or '' when refused or cut). */
function echoVia(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    let out = '';
    socket.setEncoding('utf8');
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve(out));
    socket.on('error', () => undefined);
    socket.end(text);
  });
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });
}

/** The tunnel's public port from the client's Forwarding line. */
async function publicPort(client: Nodecaddy): Promise<number> {
  const m = await waitFor(
    () => /^Forwarding tcp:\/\/tunnel\.localhost:(\d+) -> /m.exec(client.stdout()) ?? undefined,
    15_000,
    `the public port in:\n${client.stdout()}${client.stderr()}`,
  );
  return Number(m[1]);
}

async function portEntries(redisPort: number): Promise<{ p: number; i: string; h: string }[]> {
  const keys = (await redisCli(redisPort, ['--raw', 'keys', `{${PREFIX}}/tp/*`])).toString().trim();
  if (!keys) return [];
  const values = (await redisCli(redisPort, ['--raw', 'mget', ...keys.split('\n')])).toString().trim();
  return values
    .split('\n')
    .filter(Boolean)
    .map((v) => JSON.parse(v) as { p: number; i: string; h: string });
}

describe('TCP tunnels across instances', () => {
  let tmp: { dir: string; cleanup: () => void };
  let redis: Redis;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let nodes: Node[] = [];
  let range: { from: number; to: number };
  const clients: Nodecaddy[] = [];

  before(async () => {
    tmp = tempDir();
    redis = await startRedis(tmp.dir);
    echo = await startEcho();
    // Below the ephemeral range, where the other tests' port-0 servers land.
    const base = 20_000 + Math.floor(Math.random() * 11_000);
    range = { from: base, to: base + 3 };
    nodes = await Promise.all(
      HOSTS.map(async (host, n) => {
        const id = `n${n}`;
        const home = path.join(tmp.dir, id);
        mkdirSync(path.join(home, 'run'), { recursive: true });
        const port = await freePort();
        const conf = path.join(home, 'Caddyfile');
        writeFileSync(
          conf,
          `*.tunnel.localhost:${port} {\n\tbind ${host}\n\ttunnel {\n\t\tsecret ${SECRET}\n\t\tping_interval 2s\n` +
            `\t\ttcp_ports ${range.from}-${range.to}\n\t}\n}\n`,
        );
        const nc = await startNodecaddy(
          [
            ...['-conf', conf, '-log-format', 'json', '-data', path.join(home, 'data')],
            ...['-storage', `redis://127.0.0.1:${redis.port}/0?prefix=${PREFIX}`],
            ...['-cluster-listen', `127.0.0.1:${await freePort()}`, '-cluster-secret', CLUSTER_SECRET],
            ...['-instance-id', id, '-workers', n === 2 ? '2' : '1'],
          ],
          { cwd: home, env: { NODECADDY_RUN_DIR: path.join(home, 'run') } },
        );
        return { host, port, nc };
      }),
    );
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.stop('SIGKILL')));
    await Promise.all(nodes.map((n) => n.nc.stop('SIGKILL')));
    await echo?.close();
    await redis?.stop();
    tmp?.cleanup();
  });

  test('the port answers on every instance, is not handed out twice, and is freed everywhere', async () => {
    const [a, , c] = nodes;
    const first = await startClient(a.port, 'db', 0, {
      wait: false,
      args: ['-tcp', `127.0.0.1:${echo.port}`],
    });
    clients.push(first);
    const port = await publicPort(first);
    assert.ok(port >= range.from && port <= range.to, `${port} in ${range.from}-${range.to}`);
    const entries = await waitFor(
      async () => {
        const all = await portEntries(redis.port);
        return all.length === 1 ? all : undefined;
      },
      5000,
      'the port in the registry',
    );
    assert.deepEqual([entries[0].p, entries[0].i, entries[0].h], [port, 'n0', 'db.tunnel.localhost']);

    // At the holder, and relayed from the two others (one of them with two workers, one of which mirrors).
    for (const n of nodes) {
      const got = await waitFor(
        async () =>
          (await echoVia(n.host, port, `hello ${n.host}`)) === `hello ${n.host}` ? true : undefined,
        10_000,
        `the echo through ${n.host}:${port}`,
      );
      assert.ok(got);
    }
    const big = 'x'.repeat(3 * 1024 * 1024);
    assert.equal((await echoVia(nodes[1].host, port, big)).length, big.length);
    // A visitor who leaves without a FIN (reset) is gone at the holder's client too.
    await waitFor(() => (echo.open.size === 0 ? true : undefined), 5000, 'no open echo connection');
    const visitor = net.connect({ host: nodes[1].host, port });
    visitor.on('error', () => undefined);
    visitor.write('held open');
    await waitFor(
      () => (echo.open.size === 1 ? true : undefined),
      5000,
      'the relayed connection at the echo',
    );
    visitor.resetAndDestroy();
    await waitFor(() => (echo.open.size === 0 ? true : undefined), 5000, 'the echo connection closed');

    // A second client at another instance (two workers) gets another port of the range. Relayed connections
    // land on either worker there; the one without the session passes them on through the port itself.
    const second = await startClient(c.port, 'cache', 0, {
      wait: false,
      args: ['-tcp', `127.0.0.1:${echo.port}`, '-dial', `${c.host}:${c.port}`],
    });
    clients.push(second);
    const other = await publicPort(second);
    assert.notEqual(other, port);
    await waitFor(async () => (await echoVia(a.host, other, 'first')) || undefined, 10_000, 'mirror of a');
    for (let k = 0; k < 6; k++) assert.equal(await echoVia(a.host, other, `via a ${k}`), `via a ${k}`);
    const owners = (await portEntries(redis.port)).map((e) => `${e.p}@${e.i}`).sort();
    assert.deepEqual(owners, [`${port}@n0`, `${other}@n2`].sort());

    // The first client stops: its port is released in the registry and closed on every instance.
    await first.stop('SIGTERM');
    await waitFor(
      async () => ((await portEntries(redis.port)).some((e) => e.p === port) ? undefined : true),
      10_000,
      'the port released in the registry',
    );
    for (const n of nodes) {
      await waitFor(
        async () => ((await refused(n.host, port)) ? true : undefined),
        10_000,
        `${n.host}:${port} closed`,
      );
    }
  });
});
