// node build/bench/auth-flood.js [--seconds 10] [--clients 50] [--one-address] [--apr1]
//
// How long an unrelated static request takes while many clients send wrong basicauth passwords that are
// checked against a bcrypt hash (cost 10) on the same nodecaddy process (-workers 1). Each flooding client
// holds one keep-alive connection and sends its next wrong login as soon as the last one is answered; by
// default every client has its own source address (127.0.0.10, .11, …) so the per-address failure limits do
// not hide the cost of the checks; --one-address sends them all from 127.0.0.1. Every login tries a new
// password. A probe fetches a small file
// every 10 ms over its own connection and the latency percentiles of those fetches are printed.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url)); // build/bench
const cli = path.resolve(here, '../src/cli.js');
/** "secret" as bcrypt (cost 10), or with --apr1 as Apache's MD5-crypt (checked on the event loop). */
const HASH = process.argv.includes('--apr1')
  ? '$apr1$GJmbIZ6L$LMSIC0xYRvpQbzABM4vug1'
  : '$2b$10$Id4Q/xMIeXUhPyw3t4HWvuqYBv2UnxMr8kfHyJqL.OwiJ4Stxe0ru';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const seconds = flag('seconds', 10);
const clients = flag('clients', 50);
const oneAddress = process.argv.includes('--one-address');

function get(agent: http.Agent, port: number, p: string, headers: http.OutgoingHttpHeaders = {}) {
  return new Promise<number>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-auth-flood-'));
  const www = path.join(dir, 'www');
  mkdirSync(path.join(www, 'private'), { recursive: true });
  writeFileSync(path.join(www, 'hello.txt'), 'hello\n');
  writeFileSync(path.join(www, 'private', 'a.txt'), 'members\n');
  writeFileSync(path.join(dir, 'users.htpasswd'), `alice:${HASH}\n`);
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `127.0.0.1:0 {\n\troot ${www}\n\tbasicauth alice htpasswd=../users.htpasswd {\n\t\t/private\n\t}\n}\n`,
  );
  const child = spawn(process.execPath, [cli, '-conf', path.join(dir, 'Caddyfile'), '-workers', '1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /Serving HTTP on port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', () => reject(new Error(`nodecaddy exited: ${out}`)));
    });
    // A new wrong password every time, as a password guesser sends (the same header would share one check).
    let guess = 0;
    const wrong = () => ({
      Authorization: `Basic ${Buffer.from(`alice:guess${guess++}`).toString('base64')}`,
    });
    const statuses = new Map<number, number>();
    let stop = false;
    const flooders = Array.from({ length: clients }, async (_, i) => {
      const agent = new http.Agent({
        keepAlive: true,
        maxSockets: 1,
        localAddress: oneAddress ? '127.0.0.1' : `127.0.0.${10 + (i % 240)}`,
      });
      while (!stop) {
        const status = await get(agent, port, '/private/a.txt', wrong()).catch(() => 0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
      agent.destroy();
    });
    const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await get(probeAgent, port, '/hello.txt'); // warm: the file is cached, the connection open
    const latencies: number[] = [];
    const cpuBefore = process.cpuUsage();
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const t0 = performance.now();
      const status = await get(probeAgent, port, '/hello.txt');
      latencies.push(performance.now() - t0);
      if (status !== 200) throw new Error(`probe got ${status}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    stop = true;
    await Promise.all(flooders);
    probeAgent.destroy();
    const cpu = process.cpuUsage(cpuBefore);
    latencies.sort((a, b) => a - b);
    const ms = (v: number) => `${v.toFixed(1)} ms`;
    console.log(
      `${clients} flooding clients (${oneAddress ? 'one address' : 'one address each'}), ${seconds} s, ` +
        `load average ${os.loadavg()[0].toFixed(2)}, client CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s`,
    );
    console.log(
      `probe: ${latencies.length} requests, p50 ${ms(percentile(latencies, 50))}, p90 ${ms(percentile(latencies, 90))}, ` +
        `p99 ${ms(percentile(latencies, 99))}, max ${ms(latencies[latencies.length - 1])}`,
    );
    const counts = [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`);
    console.log(`flood answers: ${counts.join(', ')}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
