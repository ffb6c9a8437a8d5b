// CPU time per request of the tunnel (server and client) beside the proxy, which stays meaningful on a busy
// machine where requests/s do not: utime+stime of every process from /proc before and after a load.
//
//   node build/bench/cpu.js [--what tunnel,proxy] [--seconds 5] [--rounds 3] [--connections 50]
//                           [--big MB] [--client-flag=-inspect --client-flag=off]
//
// Small answers by wrk; with --big, one download of that many MB by curl (as a new user would try it),
// reporting MB/s, CPU per MB and the tunnel client's RSS during and after it.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree, start, stop, stopAll, waitReady, type Proc } from './procs.js';
import { wrk } from './wrk.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '../src/cli.js');
const HOST = 'bench.tunnel.localhost';
const SECRET = 'bench-secret-0123456789';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const clientFlags = process.argv.filter((a) => a.startsWith('--client-flag=')).map((a) => a.slice(14));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** utime+stime in ms of the processes (clock ticks of 10 ms). */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone */
    }
  }
  return ticks * (1000 / 100);
}

/** VmRSS (now) or VmHWM (the peak so far) of a process, in MB. */
function rssMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function curl(url: string): Promise<{ seconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', '-H', `Host: ${HOST}`, url],
      { timeout: 600_000 },
      (err, stdout) => {
        if (err) return reject(new Error(`curl failed: ${err.message}`));
        const [t, b] = stdout.trim().split(' ').map(Number);
        resolve({ seconds: t, bytes: b });
      },
    );
  });
}

async function main(): Promise<void> {
  const what = arg('what', 'tunnel,proxy').split(',');
  const seconds = Number(arg('seconds', '5'));
  const rounds = Number(arg('rounds', '3'));
  const connections = Number(arg('connections', '50'));
  const bigMb = Number(arg('big', '0'));
  const workers = arg('workers', '1');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-cpu-'));
  const backendPort = await freePort();
  const backend = start('backend', process.execPath, [path.join(here, 'backend.js'), String(backendPort)]);
  try {
    await waitReady(backend, backendPort, '/', {});
    process.stdout.write(
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}, workers ${workers}\n`,
    );
    for (const kind of what) {
      const port = await freePort();
      const conf = path.join(dir, `${kind}.caddy`);
      writeFileSync(
        conf,
        kind === 'proxy'
          ? `:${port} {\n  bind 127.0.0.1\n  proxy / 127.0.0.1:${backendPort} {\n    keepalive 64\n  }\n}\n`
          : `*.tunnel.localhost:${port} {\n  bind 127.0.0.1\n  tunnel {\n    secret ${SECRET}\n  }\n}\n`,
      );
      const server = start('nodecaddy', process.execPath, [
        cli,
        '-conf',
        conf,
        '-workers',
        workers,
        '-watch=false',
        '-quiet',
      ]);
      const procs: Proc[] = [server];
      let client: Proc | undefined;
      try {
        await waitReady(server, port, '/', { Host: HOST });
        if (kind === 'tunnel') {
          client = start('client', process.execPath, [
            cli,
            'tunnel',
            '-server',
            `http://tunnel.localhost:${port}`,
            '-dial',
            `127.0.0.1:${port}`,
            '-secret',
            SECRET,
            '-name',
            'bench',
            '-to',
            `127.0.0.1:${backendPort}`,
            '-quiet',
            ...clientFlags,
          ]);
          procs.push(client);
          while (!client.output().includes('Forwarding')) await new Promise((r) => setTimeout(r, 100));
        }
        const serverPids = () => processTree(server.child.pid!);
        const url = `http://127.0.0.1:${port}/`;
        await wrk({ url, threads: 1, connections, seconds: 1, headers: { Host: HOST } });
        for (let round = 0; round < rounds; round++) {
          const s0 = cpuMs(serverPids());
          const c0 = client ? cpuMs([client.child.pid!]) : 0;
          const b0 = cpuMs([backend.child.pid!]);
          if (bigMb > 0) {
            const r = await curl(`${url}bytes?n=${bigMb * 1024 * 1024}`);
            const mb = r.bytes / 2 ** 20;
            const s = cpuMs(serverPids()) - s0;
            const c = client ? cpuMs([client.child.pid!]) - c0 : 0;
            const rss = client ? rssMb(client.child.pid!) : 0;
            const peak = client ? rssMb(client.child.pid!, 'VmHWM') : 0;
            process.stdout.write(
              `${kind.padEnd(7)} ${(mb / r.seconds).toFixed(0).padStart(5)} MB/s  server ${(s / mb).toFixed(2)} ms/MB` +
                `${client ? `  client ${(c / mb).toFixed(2)} ms/MB, RSS ${rss.toFixed(0)} MB (peak so far ${peak.toFixed(0)})` : ''}\n`,
            );
          } else {
            const r = await wrk({ url, threads: 1, connections, seconds, headers: { Host: HOST } });
            const per = (ms: number) => ((ms * 1000) / r.requests).toFixed(1).padStart(6);
            const s = cpuMs(serverPids()) - s0;
            const c = client ? cpuMs([client.child.pid!]) - c0 : 0;
            const b = cpuMs([backend.child.pid!]) - b0;
            process.stdout.write(
              `${kind.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s  CPU µs/request: server ${per(s)}` +
                `${client ? `  client ${per(c)}` : ''}  backend ${per(b)}  (errors ${r.errors})\n`,
            );
          }
        }
        if (client && bigMb > 0) {
          // Back near idle after the transfer? Give the client a few seconds of quiet.
          await new Promise((r) => setTimeout(r, 5000));
          process.stdout.write(`client RSS 5 s after: ${rssMb(client.child.pid!).toFixed(0)} MB\n`);
        }
      } finally {
        for (const p of procs.reverse()) await stop(p);
      }
    }
  } finally {
    await stop(backend);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`cpu: ${(err as Error).message}\n`);
  await stopAll();
  process.exit(1);
});
