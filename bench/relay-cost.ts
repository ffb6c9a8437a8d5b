// What the relay between instances costs (src/cluster/relay), as a micro-measurement: a front process that
// serves a tunnel's requests (relay() as the tunnel middleware does) either directly to the tunnel's holder
// process over the unix-socket relay of one machine (PeerUpstream, "direct"), or through another instance's
// relay listener over HTTP/2 (h2c, or TLS with the proofs), which then does the same unix-socket hop. The
// target answers 1 KiB or 16 KiB. wrk loads one front at a time, rounds interleaved; reported: req/s and the
// CPU time (utime + stime from /proc) per request of the front and of the relaying holder.
//
//   npx tsc -p tsconfig.json && node build/bench/relay-cost.js [--seconds 5] [--rounds 3] [--connections 32]
import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RelayClient } from '../src/cluster/relay/client.js';
import { startRelayServer } from '../src/cluster/relay/server.js';
import { clientIp, setForwardedHeaders, withoutHopByHop } from '../src/core/forwarded.js';
import { silentLogger } from '../src/core/logger.js';
import { HookedResponse } from '../src/core/response.js';
import { PeerUpstream } from '../src/middleware/tunnel/peer.js';
import { relay, TunnelError, type Upstream } from '../src/middleware/tunnel/relay.js';
import { cpuTicks, start, stopAll, TICK_US, type Proc } from './procs.js';
import { wrk } from './wrk.js';

const SECRET = 'bench-relay-secret-0123456789';
const SITE = '*.bench#x';
const HOST = 'a.bench';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** The tunnel client's app: a fixed body of n bytes at /<n>. */
function target(socket: string): void {
  const bodies = new Map<number, Buffer>();
  http
    .createServer((req, res) => {
      const n = Number(req.url?.slice(1)) || 1024;
      let body = bodies.get(n);
      if (!body) bodies.set(n, (body = Buffer.alloc(n, 'x')));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': n }).end(body);
    })
    .listen(socket, () => console.log('READY 0'));
}

async function holder(socket: string, tls: boolean): Promise<void> {
  const server = await startRelayServer({
    host: '127.0.0.1',
    port: 0,
    secret: SECRET,
    tls,
    log: silentLogger(),
    handler: {
      upstream: (site, host) => (site === SITE ? new PeerUpstream(socket, host, 30_000) : undefined),
      evict: () => Promise.resolve(false),
    },
  });
  console.log(`READY ${server.port}`);
}

/** A relaying instance's tunnel middleware, reduced to what matters here. */
function front(upstreamOf: (host: string) => Upstream): void {
  const server = http.createServer({ ServerResponse: HookedResponse }, (req: IncomingMessage, res) => {
    const headers = withoutHopByHop(req.headers);
    setForwardedHeaders(headers, req.headers, { ip: clientIp(req.socket.remoteAddress), tls: false });
    const fwd = { method: req.method ?? 'GET', path: req.url ?? '/', authority: HOST, headers };
    const body = req.headers['content-length'] ? req : null;
    relay(res, undefined, fwd, body, upstreamOf(HOST)).catch((err: unknown) => {
      const status = err instanceof TunnelError ? err.status : 500;
      if (!res.headersSent) res.writeHead(status, { 'content-length': 0 }).end();
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(`READY ${(server.address() as AddressInfo).port}`));
}

function role(): boolean {
  const which = arg('role', '');
  const socket = arg('socket', '');
  if (which === 'target') target(socket);
  else if (which === 'holder') void holder(socket, arg('tls', '0') === '1');
  else if (which === 'front-direct') front((host) => new PeerUpstream(socket, host, 30_000));
  else if (which === 'front-relay') {
    const tls = arg('tls', '0') === '1';
    const client = new RelayClient({ secret: SECRET, log: silentLogger(), tls: () => tls });
    const address = arg('holder', '');
    front((host) => client.upstream(address, SITE, host, 30_000));
  } else return false;
  return true;
}

const self = fileURLToPath(import.meta.url);

async function spawnRole(name: string, args: string[]): Promise<{ proc: Proc; port: number }> {
  const proc = start(name, process.execPath, [self, ...args]);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${proc.output()}`)), 10_000);
    proc.child.stdout?.on('data', (d: Buffer) => {
      const m = /READY (\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return { proc, port };
}

interface Row {
  rps: number[];
  front: number[];
  holder: number[];
}

function spread(xs: number[], digits = 0): string {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(digits);
  return `${f(s[Math.floor(s.length / 2)])} [${f(s[0])}–${f(s[s.length - 1])}]`;
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '5'));
  const rounds = Number(arg('rounds', '3'));
  const connections = Number(arg('connections', '32'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'relay-cost-'));
  const socket = path.join(dir, 'target.sock');
  try {
    await spawnRole('target', ['--role', 'target', '--socket', socket]);
    const direct = await spawnRole('front-direct', ['--role', 'front-direct', '--socket', socket]);
    const modes: { name: string; front: Proc; port: number; holder?: Proc }[] = [
      { name: 'direct (unix socket)', front: direct.proc, port: direct.port },
    ];
    for (const tls of ['0', '1']) {
      const h = await spawnRole(`holder-${tls}`, ['--role', 'holder', '--socket', socket, '--tls', tls]);
      const f = await spawnRole(`front-${tls}`, [
        ...['--role', 'front-relay', '--tls', tls, '--holder', `127.0.0.1:${h.port}`],
      ]);
      modes.push({
        name: tls === '1' ? 'relay, TLS' : 'relay, h2c',
        front: f.proc,
        port: f.port,
        holder: h.proc,
      });
    }
    const results = new Map<string, Row>();
    for (let round = 0; round < rounds; round++) {
      for (const size of [1024, 16384]) {
        for (const mode of modes) {
          const url = `http://127.0.0.1:${mode.port}/${size}`;
          if (round === 0) await wrk({ url, threads: 1, connections, seconds: 2 });
          const pids = [mode.front, mode.holder].map((p) => p?.child.pid ?? 0);
          const before = pids.map((pid) => (pid ? cpuTicks(pid) : 0));
          const r = await wrk({ url, threads: 1, connections, seconds });
          const after = pids.map((pid) => (pid ? cpuTicks(pid) : 0));
          const us = (i: number) => ((after[i] - before[i]) * TICK_US) / Math.max(r.requests, 1);
          const key = `${mode.name}|${size}`;
          const row = results.get(key) ?? { rps: [], front: [], holder: [] };
          row.rps.push(r.rps);
          row.front.push(us(0));
          row.holder.push(us(1));
          results.set(key, row);
          if (r.errors > 0) console.error(`${key}: ${r.errors} errors`);
        }
      }
    }
    console.log(
      `\nload ${os.loadavg()[0].toFixed(2)}; wrk -t1 -c${connections} -d${seconds}s, ${rounds} rounds`,
    );
    console.log(
      '| hop | body | req/s median [min–max] | CPU µs/req front | CPU µs/req holder | front + holder |',
    );
    console.log('|---|---|---|---|---|---|');
    for (const [key, row] of results) {
      const [name, size] = key.split('|');
      const total = row.front.map((f, i) => f + row.holder[i]);
      console.log(
        `| ${name} | ${Number(size) / 1024} KiB | ${spread(row.rps)} | ${spread(row.front)} | ${spread(row.holder)} | ${spread(total)} |`,
      );
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!role()) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
