// Several nodecaddy instances on loopback sharing one Redis, with HAProxy in TCP mode in front of them
// (scale.md appendix A.1): the fixtures of the multi-instance tests.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from './http.js';
import { redisCli } from './redis.js';
import { freePort, startNodecaddy, type Nodecaddy } from './process.js';
import { SECRET } from './tunnel.js';

export const CLUSTER_SECRET = 'cluster-secret-0123456789';
export const HAPROXY = '/usr/sbin/haproxy';

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

/** HAProxy in TCP mode in front of the instances, once it sees every one of them UP. */
export async function startHaproxy(dir: string, instances: Instance[]): Promise<Haproxy> {
  const port = await freePort();
  const socket = path.join(dir, 'haproxy.sock');
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '    maxconn 2000',
      `    stats socket ${socket} mode 600 level admin`,
      'defaults',
      '    mode tcp',
      '    timeout connect 2s',
      '    timeout client 1h',
      '    timeout server 1h',
      '    timeout check 1s',
      '    retries 2',
      '    option redispatch',
      'frontend fe',
      `    bind 127.0.0.1:${port}`,
      '    default_backend nodecaddy',
      'backend nodecaddy',
      '    balance leastconn',
      '    option httpchk',
      '    http-check send meth GET uri / ver HTTP/1.1 hdr Host health.localhost',
      '    http-check expect status 200',
      '    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
      ...instances.map((i) => `    server ${i.id} 127.0.0.1:${i.port} check`),
      '',
    ].join('\n'),
  );
  const child = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
        const stat = await showStat(socket).catch(() => '');
        const up = stat.split('\n').filter((l) => l.startsWith('nodecaddy,') && l.split(',')[17] === 'UP');
        return up.length === instances.length;
      },
      10_000,
      `haproxy with ${instances.length} servers UP`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, stop };
}

function showStat(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.end('show stat\n');
  });
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
