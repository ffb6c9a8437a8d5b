// What request metrics cost, on the 1 KB static file, as server CPU time per request (utime + stime), which
// stays meaningful on a busy machine where requests/s drift. Two ways:
//
//   --method processes (default): nodecaddy with the admin endpoint on (every request counted) and off
//     (nothing counted), `--runs` runs of each, interleaved, `-workers 2`, loaded by wrk; CPU of the primary
//     and its workers from /proc over each run.
//   --method phases: one server in this process under one long wrk run, metrics switched on and off every
//     250 ms; CPU (process.cpuUsage) and requests are summed per state. Both states see the same machine
//     from moment to moment, so a busy neighbour shifts them alike: the finer comparison.
//
//   npx tsc -p tsconfig.json && node build/bench/metrics-cost.js [--method phases] [--runs 3] [--seconds 5]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/app.js';
import { silentLogger } from '../src/core/logger.js';
import { enableRequestMetrics } from '../src/core/metrics/http.js';
import { Runtime } from '../src/runtime.js';
import { processTree, start, stop, stopAll, waitReady } from './procs.js';
import { wrk } from './wrk.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli.js');
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      /* gone */
    }
  }
  return ticks / TICKS;
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const spread = (xs: number[]) =>
  `median ${median(xs).toFixed(2)} µs (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;

async function byProcesses(dir: string, runs: number, seconds: number): Promise<void> {
  const results: { mode: 'on' | 'off'; rps: number; us: number }[] = [];
  for (let round = 0; round < runs; round++) {
    // Alternate which goes first, so a drift of the machine's speed hits both alike.
    for (const mode of round % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const port = await freePort();
      const conf = path.join(dir, 'Caddyfile');
      writeFileSync(conf, `127.0.0.1:${port} {\n\troot ${dir}\n}\n`);
      const admin = mode === 'on' ? '127.0.0.1:0' : 'off';
      const args = [
        CLI,
        '-conf',
        conf,
        '-workers',
        '2',
        '-watch=false',
        '-quiet',
        '-admin',
        admin,
        '-log',
        'off',
      ];
      const proc = start(`nodecaddy (metrics ${mode})`, process.execPath, args);
      try {
        await waitReady(proc, port, '/1k.html', {});
        const url = `http://127.0.0.1:${port}/1k.html`;
        await wrk({ url, threads: 1, connections: 50, seconds: 2 }); // warm-up: JIT, file cache
        const pids = processTree(proc.child.pid!);
        const before = cpuSeconds(pids);
        const r = await wrk({ url, threads: 1, connections: 50, seconds });
        const used = cpuSeconds(pids) - before;
        if (r.errors > 0) throw new Error(`${r.errors} errors in the ${mode} run`);
        results.push({ mode, rps: r.rps, us: (used / r.requests) * 1e6 });
        console.log(
          `run ${round + 1}, metrics ${mode}: ${Math.round(r.rps)} req/s, ${((used / r.requests) * 1e6).toFixed(2)} µs/request`,
        );
      } finally {
        await stop(proc);
      }
    }
  }
  const on = results.filter((r) => r.mode === 'on').map((r) => r.us);
  const off = results.filter((r) => r.mode === 'off').map((r) => r.us);
  console.log(`metrics on:  ${spread(on)}\nmetrics off: ${spread(off)}`);
  console.log(`cost: ${((median(on) / median(off) - 1) * 100).toFixed(1)}% CPU per request (medians)`);
}

async function byPhases(dir: string, seconds: number): Promise<void> {
  const options = { root: dir, host: '127.0.0.1', port: '0', cwd: dir, env: {} };
  const input = { text: `127.0.0.1:0 {\n\troot ${dir}\n}\n`, name: 'Caddyfile', baseDir: dir };
  const runtime = new Runtime({
    ...options,
    log: silentLogger(),
    graceMs: 1000,
    readInput: () => input,
    watch: false,
  });
  await runtime.start(loadConfig(input, options));
  const port = [...runtime.boundPorts().values()][0];
  // The harness counts requests the same way in both states: one increment per 'request' event.
  let requests = 0;
  const emit = http.Server.prototype.emit; // eslint-disable-line @typescript-eslint/unbound-method
  http.Server.prototype.emit = function (this: http.Server, event: string, ...args: unknown[]): boolean {
    if (event === 'request') requests++;
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof emit;
  const url = `http://127.0.0.1:${port}/1k.html`;
  const load = (s: number) =>
    new Promise<void>((resolve, reject) => {
      // wrk in its own process; this process only serves (and switches every 250 ms).
      const child = spawn('wrk', ['-t1', '-c50', `-d${s}s`, url], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', () => resolve());
    });
  await load(3); // warm-up
  const totals = { on: { cpu: 0, requests: 0, phases: 0 }, off: { cpu: 0, requests: 0, phases: 0 } };
  let on = false;
  let lastCpu = process.cpuUsage();
  let lastRequests = requests;
  const timer = setInterval(() => {
    const cpu = process.cpuUsage(lastCpu);
    const t = totals[on ? 'on' : 'off'];
    t.cpu += cpu.user + cpu.system;
    t.requests += requests - lastRequests;
    t.phases++;
    on = !on;
    enableRequestMetrics(on);
    lastCpu = process.cpuUsage();
    lastRequests = requests;
  }, 250);
  await load(seconds);
  clearInterval(timer);
  http.Server.prototype.emit = emit;
  await runtime.stop(1000);
  const us = (t: { cpu: number; requests: number }) => t.cpu / t.requests;
  for (const [name, t] of Object.entries(totals))
    console.log(
      `metrics ${name}: ${t.phases} phases, ${t.requests} requests, ${us(t).toFixed(2)} µs/request`,
    );
  console.log(`cost: ${((us(totals.on) / us(totals.off) - 1) * 100).toFixed(1)}% CPU per request`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-metrics-cost-'));
  writeFileSync(path.join(dir, '1k.html'), 'x'.repeat(1024));
  try {
    if (arg('method', 'processes') === 'phases') await byPhases(dir, Number(arg('seconds', '30')));
    else await byProcesses(dir, Number(arg('runs', '3')), Number(arg('seconds', '5')));
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
