// Processes the benchmark starts, and what it measures about them. Every process is started in its own
// process group and recorded, so that stopAll() (run at the end, on Ctrl-C and on errors) leaves nothing.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

const running = new Set<Proc>();

export function start(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString('utf8')).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = { name, child, exited, output: () => out };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** SIGTERM to the whole group, SIGKILL if it is still there after graceMs. */
export async function stop(proc: Proc, graceMs = 5000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  signalGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
  signalGroup(proc, 'SIGKILL'); // stragglers of the group (e.g. nginx workers)
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stop(p)));
}

/** Last resort in process.on('exit'): synchronous. */
export function killAllNow(): void {
  for (const p of running) signalGroup(p, 'SIGKILL');
}

function signalGroup(proc: Proc, signal: NodeJS.Signals): void {
  try {
    if (proc.child.pid) process.kill(-proc.child.pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * CPU time (user + system, in clock ticks of 10 ms) used so far by a process tree: taken before and after a run,
 * it gives the server's CPU per request, which stays meaningful on a busy machine where requests/s drift.
 */
export function cpuTicks(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      /* gone */
    }
  }
  return ticks;
}

/** Linux reports /proc times in USER_HZ, 100 per second on every architecture we run on. */
export const TICK_US = 10_000;

/** The pid and all its descendants (nginx master + workers, nodecaddy primary + workers). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/**
 * Resident memory of one process in kB: RSS, and PSS (shared pages divided among the processes that map them,
 * so a sum over several processes of one program counts its binary and libraries once).
 */
export function memKb(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const rss = /^Rss:\s+(\d+) kB/m.exec(text);
    const pss = /^Pss:\s+(\d+) kB/m.exec(text);
    return { rss: rss ? Number(rss[1]) : 0, pss: pss ? Number(pss[1]) : 0 };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/**
 * Samples the memory of a process tree: the peak of the PSS sum (what the server costs the machine), the peak
 * RSS of its largest worker (the root itself when it has no children), and every sample per pid (the soak).
 */
export class MemorySampler {
  peakPssKb = 0;
  peakWorkerRssKb = 0;
  readonly samples: { t: number; perPid: Map<number, number> }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = Date.now();

  constructor(
    private readonly root: number,
    everyMs = 200,
    private readonly keep = false,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.sample();
  }

  private sample(): void {
    const pids = processTree(this.root);
    const perPid = new Map<number, number>();
    let pss = 0;
    for (const pid of pids) {
      const m = memKb(pid);
      perPid.set(pid, m.rss);
      pss += m.pss;
      if (pid !== this.root || pids.length === 1)
        this.peakWorkerRssKb = Math.max(this.peakWorkerRssKb, m.rss);
    }
    this.peakPssKb = Math.max(this.peakPssKb, pss);
    if (this.keep) this.samples.push({ t: Date.now() - this.t0, perPid });
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

export interface Probe {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  /** Over HTTPS: the SHA-256 fingerprint of the leaf the server showed. */
  fingerprint256?: string;
}

/** One GET (over HTTPS when `ca` is given, verified against it); resolves with status, headers, body length. */
export function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  ca?: string,
): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, headers, agent: false };
    const onResponse = (res: http.IncomingMessage) => {
      let bytes = 0;
      const fingerprint256 = ca
        ? (res.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256
        : undefined;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, fingerprint256 }),
      );
      res.on('error', reject);
    };
    const req = ca ? https.get({ ...options, ca }, onResponse) : http.get(options, onResponse);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

/** Polls until the server answers `path` (any status), or fails after deadlineMs with the process output. */
export async function waitReady(
  proc: Proc,
  port: number,
  path: string,
  headers: Record<string, string>,
  deadlineMs = 15_000,
  ca?: string,
): Promise<Probe> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited: ${proc.output().trim()}`);
    try {
      return await get(port, path, headers, ca);
    } catch (err) {
      if (Date.now() > until)
        throw new Error(`${proc.name} not ready: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
