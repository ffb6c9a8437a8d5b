// Processes the benchmark starts, and what it measures about them. Every process is started in its own
// process group and recorded, so that stopAll() (run at the end, on Ctrl-C and on errors) leaves nothing.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

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

export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Samples the RSS of a process tree: the peak of the sum, and every sample per pid (for the soak). */
export class RssSampler {
  peakKb = 0;
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
    const perPid = new Map(processTree(this.root).map((pid) => [pid, rssKb(pid)]));
    let sum = 0;
    for (const kb of perPid.values()) sum += kb;
    this.peakKb = Math.max(this.peakKb, sum);
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
}

/** One GET; resolves with status, headers and the body length. */
export function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
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
): Promise<Probe> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited: ${proc.output().trim()}`);
    try {
      return await get(port, path, headers);
    } catch (err) {
      if (Date.now() > until)
        throw new Error(`${proc.name} not ready: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
