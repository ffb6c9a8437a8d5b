// npm run bench: nginx, Caddy 2 and nodecaddy over the same files and backends, one scenario after another,
// each loaded with wrk on loopback (h2load and openssl s_time for the HTTP/2 and handshake scenarios). See
// bench/README.md. `--soak <s>` loads one scenario for that long and samples the RSS of every nodecaddy process
// instead.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeLoad, loadOnce } from './load.js';
import {
  cpuTicks,
  get,
  killAllNow,
  MemorySampler,
  stop,
  stopAll,
  TICK_US,
  waitReady,
  type Proc,
} from './procs.js';
import { writeResults, writeSoak, type Row } from './report.js';
import { NGINX_FASTCGI_KEEPALIVE, SCENARIOS, type Env, type Scenario, type ServerName } from './scenarios.js';
import { benchPage } from './page.js';
import {
  machine,
  nodecaddyCannot,
  startBackend,
  startPhpFpm,
  startServer,
  startTcpSource,
  startTunnelClient,
  type Paths,
} from './servers.js';
import { makeBenchCert } from './tls.js';
import { tcpReady } from './tcpload.js';
import type { WrkResult } from './wrk.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // build/bench

/**
 * Requests each server gets to warm up, at least (in further 1 s loads after --warmup, up to WARMUP_MAX_S):
 * Node compiles hot code after enough calls, not after a time, and on the busy machine a fresh nodecaddy
 * worker behind FastCGI spent 1319, 522, 400, 417, 190, 159, 124 and 86 us of CPU per request over its first
 * eight seconds (load ~20), a second of warm-up being a few hundred requests.
 */
const WARMUP_REQUESTS = 10_000;
const WARMUP_MAX_S = 8;
const repo = path.resolve(here, '../..');

interface Options {
  seconds: number;
  warmup: number;
  /** Measured runs per server and scenario, interleaved across the servers; the median is reported. */
  runs: number;
  threads: number;
  connections: number;
  workers: number;
  only: string[];
  servers: ServerName[];
  soak: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    seconds: 4,
    warmup: 1,
    runs: 3,
    threads: 1,
    connections: 50,
    workers: os.availableParallelism(),
    only: [],
    servers: ['nginx', 'caddy', 'nodecaddy'],
    soak: 0,
    out: path.join(repo, 'bench', 'results.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].replace(/^--?/, '').split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? '';
    if (flag === 'duration' || flag === 'd') o.seconds = Number(value());
    else if (flag === 'warmup') o.warmup = Number(value());
    else if (flag === 'runs') o.runs = Math.max(1, Number(value()));
    else if (flag === 'threads' || flag === 't') o.threads = Number(value());
    else if (flag === 'connections' || flag === 'c') o.connections = Number(value());
    else if (flag === 'workers') o.workers = Number(value());
    else if (flag === 'only') o.only = value().split(',');
    else if (flag === 'servers') o.servers = value().split(',') as ServerName[];
    else if (flag === 'soak') o.soak = Number(value());
    else if (flag === 'out') o.out = path.resolve(value());
    else if (flag === 'help' || flag === 'h') {
      process.stdout.write(
        'npm run bench -- [--duration 4] [--runs 3] [--warmup 1] [--threads 1] [--connections 50] [--workers N]\n' +
          `  [--only ${SCENARIOS.map((s) => s.id).join(',')}] [--servers nginx,caddy,nodecaddy]\n` +
          '  [--out bench/results.md] [--soak SECONDS [--only 1k]]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${argv[i]}`);
  }
  return o;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The same files for every server: deterministic content, readable by nginx's unprivileged workers. */
function makeFiles(dir: string): Env {
  const files = path.join(dir, 'files');
  const php = path.join(dir, 'php');
  mkdirSync(path.join(files, 'list'), { recursive: true });
  mkdirSync(php);
  const pattern = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = 97 + ((i * 7) % 26);
    return b;
  };
  writeFileSync(path.join(files, '1k.html'), pattern(1024));
  writeFileSync(path.join(files, '100k.bin'), pattern(100 * 1024));
  writeFileSync(path.join(files, '10m.bin'), pattern(10 * 1024 * 1024));
  writeFileSync(path.join(files, 'page.html'), benchPage());
  for (let i = 0; i < 100; i++)
    writeFileSync(path.join(files, 'list', `file-${i}.txt`), `${i}\n`.repeat(i + 1));
  writeFileSync(
    path.join(php, 'index.php'),
    '<?php\nheader("Content-Type: text/plain");\necho "hello from php\\n";\n',
  );
  chmodSync(dir, 0o755);
  return {
    files,
    php,
    backendPort: 0,
    phpPort: 0,
    tunnelSecret: 'bench-secret-0123456789',
    tcpSourcePort: 0,
    tcpPorts: { from: 0, to: 0 },
    cert: undefined,
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tools: [string, string[]][] = [
    ['wrk', ['--version']],
    ['/usr/sbin/nginx', ['-v']],
    ['/usr/bin/caddy', ['version']],
  ];
  for (const [bin, args] of tools) {
    try {
      execFileSync(bin, args, { stdio: 'pipe' });
    } catch (err) {
      // wrk --version exits 1 after printing its version; only a missing binary matters.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error(`${bin} is missing: apt-get install wrk nginx caddy php-fpm`, { cause: err });
    }
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-bench-'));
  runDir = dir;
  const paths: Paths = {
    dir,
    cli: path.join(repo, 'build', 'src', 'cli.js'),
    backend: path.join(here, 'backend.js'),
    workers: o.workers,
  };
  const env = makeFiles(dir);
  const extras: Proc[] = [];
  const facts = machine();
  try {
    const chosen = SCENARIOS.filter((s) => o.only.length === 0 || o.only.includes(s.id));
    if (chosen.some((s) => s.tls)) {
      for (const [bin, arg] of [
        ['openssl', 'version'],
        ['h2load', '--version'],
      ])
        if (spawnSync(bin, [arg]).error)
          throw new Error(`${bin} is missing: apt-get install openssl nghttp2-client`);
      env.cert = makeBenchCert(dir);
    }
    if (chosen.some((s) => s.needs?.includes('backend'))) {
      env.backendPort = await freePort();
      const b = startBackend(env.backendPort, paths);
      backendPid = b.child.pid;
      extras.push(b);
      await waitReady(b, env.backendPort, '/', {});
    }
    if (chosen.some((s) => s.needs?.includes('tcpsource'))) {
      env.tcpSourcePort = await freePort();
      const t = startTcpSource(env.tcpSourcePort, paths);
      tcpSourcePid = t.child.pid;
      extras.push(t);
      await tcpReady(env.tcpSourcePort);
      // The tunnel site's public TCP ports: taken ones are skipped by the server.
      const first = await freePort();
      env.tcpPorts = { from: first, to: Math.min(first + 9, 65535) };
    }
    if (chosen.some((s) => s.needs?.includes('php'))) {
      env.phpPort = await freePort();
      const children = 2 * Math.max(4, o.connections) + o.workers * NGINX_FASTCGI_KEEPALIVE;
      extras.push(startPhpFpm(env.phpPort, paths, children));
    }
    if (o.soak > 0) return await soak(o, chosen[0] ?? SCENARIOS[0], env, paths, facts);

    const rows: Row[] = [];
    const skipped: string[] = [];
    for (const sc of chosen) {
      const servers = (sc.servers ?? ['nginx', 'caddy', 'nodecaddy']).filter(
        (s) => s === 'direct' || o.servers.includes(s),
      );
      const runnable: ServerName[] = [];
      for (const server of servers) {
        if (server === 'nodecaddy') {
          const why = nodecaddyCannot(sc, env, paths);
          if (why) {
            const line = `${sc.id}: skipped for nodecaddy: ${why}`;
            process.stdout.write(`${line}\n`);
            skipped.push(line);
            continue;
          }
        }
        runnable.push(server);
      }
      for (const row of await measureScenario(sc, runnable, env, paths, o)) {
        rows.push(row);
        process.stdout.write(`${formatLine(row)}\n`);
      }
    }
    writeResults(o.out, { facts, options: o, rows, skipped });
    process.stdout.write(`\nwrote ${path.relative(process.cwd(), o.out)}\n`);
  } finally {
    await Promise.all(extras.map((p) => stop(p)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** s_time measures no latency. */
const latency = (r: Row) =>
  Number.isFinite(r.p50ms) ? `p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms` : 'no latencies';

function formatLine(r: Row): string {
  return `${r.scenario.padEnd(15)} ${r.server.padEnd(10)} ${r.rps.toFixed(0).padStart(8)} req/s (${r.minRps.toFixed(0)}–${r.maxRps.toFixed(0)})  ${(r.bytesPerSec / 2 ** 20).toFixed(1).padStart(7)} MB/s  ${latency(r)}  CPU ${Number.isFinite(r.cpuUs) ? `${r.cpuUs.toFixed(0)} µs/req` : '–'}  PSS ${(r.peakPssKb / 1024).toFixed(0)} MB  worker RSS ${(r.peakWorkerRssKb / 1024).toFixed(0)} MB${r.errors ? `  ERRORS ${r.errors}` : ''}${r.note ? `  (${r.note})` : ''}`;
}

interface Running {
  server: ServerName;
  port: number;
  /** The process tree whose memory is sampled (the backend's for `direct`). */
  pid: number | undefined;
  note: string | undefined;
  /** The first response's body size as sent (Scenario.showBody). */
  body: number | undefined;
  runs: WrkResult[];
  /** Server CPU time per request of each measured run, in µs. */
  cpuUs: number[];
  peakPssKb: number;
  peakWorkerRssKb: number;
}

/**
 * One scenario: starts every server at once (each on its own port, idle while the others are loaded), checks
 * and warms up each, then measures `runs` rounds, each round loading every server once in a rotating order,
 * so that a slow spell of the machine falls on all of them alike. Reports each server's median run.
 */
async function measureScenario(
  sc: Scenario,
  servers: ServerName[],
  env: Env,
  p: Paths,
  o: Options,
): Promise<Row[]> {
  const procs: Proc[] = [];
  const headers = sc.headers ?? {};
  const connections = Math.min(o.connections, sc.connections ?? o.connections);
  const load = (r: Running, seconds: number) =>
    loadOnce(sc, { port: r.port, seconds, threads: o.threads, connections, dir: p.dir });
  const ca = sc.tls ? env.cert?.ca : undefined;
  /** Starts one server (and the tunnel client), checks its first answer, warms it up. */
  const bringUp = async (server: ServerName): Promise<Running> => {
    const direct = sc.tcp ? env.tcpSourcePort : env.backendPort;
    let port = server === 'direct' ? direct : await freePort();
    let pid = sc.tcp ? tcpSourcePid : backendPid;
    if (server !== 'direct') {
      const root = startServer(server, sc, port, env, p);
      procs.push(root);
      await waitReady(root, port, sc.path, headers, undefined, ca);
      pid = root.child.pid;
    }
    if (sc.tunnelClient) {
      const client = startTunnelClient(port, env, p, sc.tcp);
      procs.push(client);
      const until = Date.now() + 15_000;
      while (!client.output().includes('Forwarding') && Date.now() < until) await sleep(100);
      // A TCP tunnel is loaded on the public port the server gave it.
      const tcpPort = /Forwarding tcp:\/\/[^:]+:(\d+)/.exec(client.output())?.[1];
      if (sc.tcp) {
        if (!tcpPort) throw new Error(`the TCP tunnel did not come up: ${client.output()}`);
        port = Number(tcpPort);
      }
    }
    const r: Running = {
      server,
      port,
      pid,
      note: undefined,
      body: undefined,
      runs: [],
      cpuUs: [],
      peakPssKb: 0,
      peakWorkerRssKb: 0,
    };
    if (!sc.tcp) {
      const first = await get(port, sc.path, headers, ca);
      r.note = sc.check?.(first.status, first.headers, first.bytes);
      if (sc.showBody) r.body = first.bytes;
      if (ca && first.fingerprint256 !== env.cert?.fingerprint256) r.note ??= 'showed another certificate';
    }
    if (o.warmup > 0) {
      // A TCP load counts no requests: it gets the --warmup seconds only.
      let warmed = (await load(r, o.warmup)).requests;
      for (let s = o.warmup; !sc.tcp && warmed < WARMUP_REQUESTS && s < WARMUP_MAX_S; s++)
        warmed += (await load(r, 1)).requests;
    }
    return r;
  };
  const stopAllStarted = async () => {
    for (const proc of procs.splice(0).reverse()) await stop(proc);
  };
  try {
    const running: Running[] = [];
    for (const server of servers) running.push(await bringUp(server));
    for (let round = 0; round < o.runs; round++) {
      for (let i = 0; i < running.length; i++) {
        const r = running[(i + round) % running.length];
        const sampler = r.pid ? new MemorySampler(r.pid) : undefined;
        const cpu0 = r.pid ? cpuTicks(r.pid) : 0;
        const run = await load(r, o.seconds);
        if (r.pid && run.requests > 0) r.cpuUs.push(((cpuTicks(r.pid) - cpu0) * TICK_US) / run.requests);
        r.runs.push(run);
        r.note ??= run.problem;
        sampler?.stop();
        r.peakPssKb = Math.max(r.peakPssKb, sampler?.peakPssKb ?? 0);
        r.peakWorkerRssKb = Math.max(r.peakWorkerRssKb, sampler?.peakWorkerRssKb ?? 0);
      }
    }
    return running.map((r) => {
      // A TCP row has no requests: its runs are ranked by bytes per second.
      const rank = (x: WrkResult) => (sc.tcp ? x.bytesPerSec : x.rps);
      const sorted = [...r.runs].sort((a, b) => rank(a) - rank(b));
      const median = sorted[Math.floor((sorted.length - 1) / 2)];
      const cpu = [...r.cpuUs].sort((a, b) => a - b);
      return {
        scenario: sc.id,
        title: sc.title,
        server: r.server,
        ...median,
        errors: r.runs.reduce((sum, run) => sum + run.errors, 0),
        minRps: sorted[0].rps,
        maxRps: sorted[sorted.length - 1].rps,
        ...(sc.tcp && {
          minBytesPerSec: sorted[0].bytesPerSec,
          maxBytesPerSec: sorted[sorted.length - 1].bytesPerSec,
        }),
        peakPssKb: r.peakPssKb,
        peakWorkerRssKb: r.peakWorkerRssKb,
        note: r.note,
        body: r.body,
        connections,
        load: describeLoad(sc, o.threads, connections, o.seconds),
        cpuUs: cpu.length ? cpu[Math.floor((cpu.length - 1) / 2)] : NaN,
        minCpuUs: cpu.length ? cpu[0] : NaN,
        maxCpuUs: cpu.length ? cpu[cpu.length - 1] : NaN,
      };
    });
  } finally {
    await stopAllStarted();
  }
}

async function soak(
  o: Options,
  sc: Scenario,
  env: Env,
  p: Paths,
  facts: Record<string, string>,
): Promise<void> {
  const why = nodecaddyCannot(sc, env, p);
  if (why) throw new Error(`cannot soak ${sc.id}: ${why}`);
  const port = await freePort();
  const root = startServer('nodecaddy', sc, port, env, p);
  try {
    await waitReady(root, port, sc.path, sc.headers ?? {}, undefined, sc.tls ? env.cert?.ca : undefined);
    const sampler = new MemorySampler(root.child.pid!, 1000, true);
    process.stdout.write(`soak: ${sc.id} for ${o.soak} s, RSS sampled every second\n`);
    const connections = Math.min(o.connections, sc.connections ?? o.connections);
    const r = await loadOnce(sc, { port, seconds: o.soak, threads: o.threads, connections, dir: p.dir });
    sampler.stop();
    const out = o.out.endsWith('results.md') ? o.out.replace(/results\.md$/, 'soak.md') : o.out;
    writeSoak(out, {
      facts,
      scenario: sc,
      seconds: o.soak,
      result: r,
      samples: sampler.samples,
      primary: root.child.pid!,
    });
    process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
  } finally {
    await stop(root);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The backend's pid: its RSS is the `direct` row's. */
let backendPid: number | undefined;
/** The TCP source's pid: the `direct` row's of the TCP scenarios. */
let tcpSourcePid: number | undefined;
/** The run's temp dir, removed however the bench ends. */
let runDir: string | undefined;
process.on('exit', () => {
  killAllNow();
  if (runDir) rmSync(runDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping every process the bench started\n`);
    void stopAll().finally(() => process.exit(130));
  });
}
main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  await stopAll();
  process.exit(1);
});
