// A tunnel reached through the instance that holds it, and through another instance of the same cluster (the
// visitor's request relayed between instances over the cluster relay), side by side: two nodecaddy instances
// sharing a redis-server, one `nodecaddy tunnel` client connected to instance A, wrk loading A and B in
// interleaved rounds. Reports req/s, latency and CPU per request of each instance; the ratio relayed/local
// with its spread over the rounds.
//
//   node build/bench/cluster.js [--seconds 5] [--rounds 3] [--connections 50] [--workers 1]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTicks, start, stop, stopAll, TICK_US, waitReady, type Proc } from './procs.js';
import { wrk, type WrkResult } from './wrk.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '../src/cli.js');
const HOST = 'bench.tunnel.localhost';
const SECRET = 'bench-secret-0123456789';
const CLUSTER_SECRET = 'bench-cluster-secret-0123456789';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Instance {
  name: string;
  port: number;
  proc: Proc;
}

async function startInstance(
  name: string,
  dir: string,
  redisPort: number,
  workers: string,
): Promise<Instance> {
  const port = await freePort();
  const relay = await freePort();
  const conf = path.join(dir, `${name}.caddy`);
  writeFileSync(
    conf,
    `*.tunnel.localhost:${port} {\n  bind 127.0.0.1\n  tunnel {\n    secret ${SECRET}\n  }\n}\n`,
  );
  const proc = start(
    `nodecaddy ${name}`,
    process.execPath,
    [
      cli,
      '-conf',
      conf,
      '-workers',
      workers,
      '-watch=false',
      '-quiet',
      '-admin',
      'off',
      '-data',
      path.join(dir, `data-${name}`),
      '-storage',
      `redis://127.0.0.1:${redisPort}/0`,
      '-cluster-listen',
      `127.0.0.1:${relay}`,
      '-instance-id',
      name,
      '-log',
      path.join(dir, `${name}.log`),
    ],
    { env: { ...process.env, NODECADDY_CLUSTER_SECRET: CLUSTER_SECRET } },
  );
  await waitReady(proc, port, '/', { Host: HOST });
  return { name, port, proc };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '5'));
  const rounds = Number(arg('rounds', '3'));
  const connections = Number(arg('connections', '50'));
  const workers = arg('workers', '1');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-cluster-bench-'));
  const procs: Proc[] = [];
  try {
    const redisPort = await freePort();
    const redis = start('redis-server', 'redis-server', [
      '--port',
      String(redisPort),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ]);
    procs.push(redis);
    const backendPort = await freePort();
    const backend = start('backend', process.execPath, [path.join(here, 'backend.js'), String(backendPort)]);
    procs.push(backend);
    await waitReady(backend, backendPort, '/', {});
    const a = await startInstance('a', dir, redisPort, workers);
    procs.push(a.proc);
    const b = await startInstance('b', dir, redisPort, workers);
    procs.push(b.proc);
    const client = start('client', process.execPath, [
      cli,
      'tunnel',
      '-server',
      `http://tunnel.localhost:${a.port}`,
      '-dial',
      `127.0.0.1:${a.port}`,
      '-secret',
      SECRET,
      '-name',
      'bench',
      '-to',
      `127.0.0.1:${backendPort}`,
      '-quiet',
    ]);
    procs.push(client);
    for (const inst of [a, b]) {
      const until = Date.now() + 15_000;
      while ((await waitReady(inst.proc, inst.port, '/', { Host: HOST })).status !== 200) {
        if (Date.now() > until) throw new Error(`${inst.name} does not reach the tunnel: ${client.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    process.stdout.write(
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(
          ' ',
        )}, workers ${workers} per instance, ${connections} connections, ${seconds} s x ${rounds} rounds\n`,
    );
    const load = (inst: Instance, s: number) =>
      wrk({
        url: `http://127.0.0.1:${inst.port}/`,
        threads: 1,
        connections,
        seconds: s,
        headers: { Host: HOST },
      });
    await load(a, 1);
    await load(b, 1);
    const rps: Record<string, number[]> = { local: [], relayed: [] };
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const results: Record<string, WrkResult> = {};
      for (const [kind, inst] of [
        ['local', a],
        ['relayed', b],
      ] as const) {
        const ticks = [a, b, { proc: client }].map((p) => cpuTicks(p.proc.child.pid!));
        const r = await load(inst, seconds);
        const used = [a, b, { proc: client }].map(
          (p, i) => ((cpuTicks(p.proc.child.pid!) - ticks[i]) * TICK_US) / r.requests,
        );
        results[kind] = r;
        rps[kind].push(r.rps);
        process.stdout.write(
          `${kind.padEnd(8)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms` +
            `  CPU µs/request: A ${used[0].toFixed(1)}  B ${used[1].toFixed(1)}  client ${used[2].toFixed(1)}  (errors ${r.errors})\n`,
        );
      }
      ratios.push(results.relayed.rps / results.local.rps);
    }
    process.stdout.write(
      `\nlocal ${median(rps.local).toFixed(0)} req/s, relayed ${median(rps.relayed).toFixed(0)} req/s: ` +
        `relayed/local ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})\n`,
    );
  } finally {
    for (const p of procs.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`cluster bench: ${(err as Error).message}\n`);
  await stopAll();
  process.exit(1);
});
