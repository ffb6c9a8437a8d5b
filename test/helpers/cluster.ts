// Several nodecaddy instances on loopback sharing one Redis, with HAProxy in TCP mode in front of them
// (scale.md appendix A.1): the fixtures of the multi-instance tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startHaproxy as startLoadBalancer } from './haproxy.js';
import { waitFor } from './http.js';
import { redisCli } from './redis.js';
import { freePort, startNodecaddy, type Nodecaddy } from './process.js';
import { SECRET } from './tunnel.js';

export const CLUSTER_SECRET = 'cluster-secret-0123456789';
export { HAPROXY } from './haproxy.js';

export interface Instance {
  id: string;
  /** The HTTP port of its sites. */
  port: number;
  relayPort: number;
  nc: Nodecaddy;
}

/**
 * Starts instance `id`: a tunnel site (`max_sessions`), a health site for HAProxy and a plain local site on
 * one port, its own NODECADDY_RUN_DIR, the tunnel registry on Redis under `prefix`, a relay listener.
 */
export async function startInstance(
  dir: string,
  id: string,
  redisPort: number,
  prefix: string,
  /** workers: 1 unless given (a cached route lives in one process). */
  opts: { workers?: number; maxSessions?: number; port?: number; relayPort?: number; admin?: boolean } = {},
): Promise<Instance> {
  const port = opts.port ?? (await freePort());
  const relayPort = opts.relayPort ?? (await freePort());
  const home = path.join(dir, id);
  mkdirSync(path.join(home, 'run'), { recursive: true });
  const conf = path.join(home, 'Caddyfile');
  writeFileSync(
    conf,
    `*.tunnel.localhost:${port} {\n\tbind 127.0.0.1\n\ttunnel {\n\t\tsecret ${SECRET}\n\t\tmax_sessions ${opts.maxSessions ?? 3}\n\t\tping_interval 2s\n\t}\n}\n` +
      `health.localhost:${port} {\n\tbind 127.0.0.1\n\tstatus 200 /\n}\n` +
      `local.localhost:${port} {\n\tbind 127.0.0.1\n\tstatus 200 /\n}\n`,
  );
  const nc = await startNodecaddy(
    [
      '-conf',
      conf,
      '-log-format',
      'json',
      '-data',
      path.join(home, 'data'),
      '-storage',
      `redis://127.0.0.1:${redisPort}/0?prefix=${prefix}`,
      '-cluster-listen',
      `127.0.0.1:${relayPort}`,
      '-cluster-secret',
      CLUSTER_SECRET,
      '-instance-id',
      id,
      '-workers',
      String(opts.workers ?? 1),
    ],
    {
      cwd: home,
      env: {
        NODECADDY_RUN_DIR: path.join(home, 'run'),
        ...(opts.admin && { NODECADDY_ADMIN: '127.0.0.1:0' }),
      },
    },
  );
  return { id, port, relayPort, nc };
}

/** The registry entry of a tunnel name (parsed), or undefined. */
export async function registryEntry(
  redisPort: number,
  prefix: string,
  name: string,
): Promise<{ i: string; a: string } | undefined> {
  const keys = (await redisCli(redisPort, ['--raw', 'keys', `{${prefix}}/t/*/${name}.tunnel.localhost`]))
    .toString()
    .trim();
  if (!keys) return undefined;
  const raw = (await redisCli(redisPort, ['--raw', 'get', keys.split('\n')[0]])).toString().trim();
  return raw ? (JSON.parse(raw) as { i: string; a: string }) : undefined;
}

export interface Haproxy {
  port: number;
  stop(): Promise<void>;
}

/** HAProxy in TCP mode in front of the instances (health-checked on health.localhost), once every one is UP. */
export async function startHaproxy(dir: string, instances: Instance[]): Promise<Haproxy> {
  const port = await freePort();
  const servers = Object.fromEntries(instances.map((i) => [i.id, i.port]));
  const lb = await startLoadBalancer(dir, [
    { name: 'tunnels', port, servers, healthHost: 'health.localhost' },
  ]);
  try {
    await waitFor(
      async () => (await lb.upServers('tunnels').catch(() => [])).length === instances.length,
      10_000,
      `haproxy with ${instances.length} servers UP`,
    );
  } catch (err) {
    await lb.stop();
    throw err;
  }
  return { port, stop: () => lb.stop() };
}

/** A GET with the given Host to `port`: status and body ('' and status 0 when the connection failed). */
export function get(
  port: number,
  host: string,
  urlPath = '/',
  agent: http.Agent | false = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, headers: { host }, agent });
    req.setTimeout(5_000, () => req.destroy());
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}
