// The cluster primary's engine: N worker processes serve, the primary decides. The Runtime above it has
// already loaded and validated every config (so a broken Caddyfile fails once, with file:line, and changes
// no worker). A switch is two-phase across the workers: every worker prepares (builds and binds beside its
// running config); only if all succeeded do they all commit, otherwise they all abort. Listening sockets are
// shared through node:cluster; a worker that dies is replaced, with backoff when it keeps dying.
import cluster, { type Worker } from 'node:cluster';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CaddyfileInput, Config } from '../app.js';
import type { Logger } from '../core/logger.js';
import type { ApplySummary, Engine } from '../engine.js';
import { isOurs, plainInput, type ToPrimary, type ToWorker } from './messages.js';
import { CertificateBroadcast } from './cert-broadcast.js';
import type { CertificateRequests } from '../core/tls/managed.js';
import net from 'node:net';
import { listenError } from '../core/listener.js';
import { missingMemoryEnv, missingMemoryFlags } from './memory-settings.js';

/** Longest wait for a worker to answer (boot, prepare). A worker that does not answer is killed. */
const ANSWER_TIMEOUT_MS = 60_000;

/** The primary's own node flags, and the workers' memory flags the user did not set (argv, NODE_OPTIONS). */
function workerExecArgv(): string[] {
  return [...process.execArgv, ...missingMemoryFlags()];
}

/** A worker that dies sooner than this after its start counts as a crash loop and backs off. */
const STABLE_AFTER_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;

interface Slot {
  worker: Worker;
  startedAt: number;
}

export interface ClusterOptions {
  workers: number;
  log: Logger;
  /**
   * Who accepts connections: 'rr' (the primary accepts and hands them round-robin to workers) or 'none'
   * (workers accept from the shared socket; the kernel decides). NODE_CLUSTER_SCHED_POLICY overrides.
   */
  scheduling: 'rr' | 'none';
  /** Longest wait for every worker to acknowledge a certificate or challenge (default 10 s). */
  certificateAckTimeoutMs?: number;
}

export class ClusterEngine implements Engine {
  private readonly slots = new Map<number, Slot>();
  private committed: CaddyfileInput | undefined;
  private ports = new Map<string, number>();
  /** Switches and replacements run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  private switchIds = 0;
  private stopping = false;
  /** Crashes in a row of workers that died young; sets the backoff. */
  private quickCrashes = 0;
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  /** Private directory for cross-worker rendezvous (e.g. tunnel session sockets), removed at exit. */
  readonly runDir: string;
  private ownRunDir = false;
  private readonly log: Logger;
  /**
   * Where the certificate manager (running here, the only ACME client) puts certificates and challenges: every
   * serving worker has them when a put resolves, and every new worker gets them before it serves.
   */
  readonly certificates: CertificateBroadcast;

  constructor(private readonly options: ClusterOptions) {
    this.log = options.log;
    this.certificates = new CertificateBroadcast(options.log, options.certificateAckTimeoutMs);
    if (!process.env.NODE_CLUSTER_SCHED_POLICY)
      cluster.schedulingPolicy = options.scheduling === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    cluster.setupPrimary({ execArgv: workerExecArgv() });
    // A run directory given in the environment is shared with other nodecaddy processes (several servers
    // serving one tunnel name): use it and leave it in place. Otherwise a private one, removed at exit.
    const given = process.env.NODECADDY_RUN_DIR;
    if (given) {
      mkdirSync(given, { recursive: true, mode: 0o700 });
      this.runDir = given;
    } else {
      this.runDir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-run-'));
      this.ownRunDir = true;
      process.once('exit', () => rmSync(this.runDir, { recursive: true, force: true }));
    }
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
  }

  boundPorts(): Map<string, number> {
    return new Map(this.ports);
  }

  /** Pids of the live workers (for tests and the startup log). */
  workerPids(): number[] {
    return [...this.slots.values()].map((s) => s.worker.process.pid ?? 0);
  }

  /** Who answers the workers' certificate requests (on demand, tunnel claims); without one, need is refused. */
  setCertificateRequests(handler: CertificateRequests | undefined): void {
    this.certificates.setRequests(handler);
  }

  apply(config: Config): Promise<ApplySummary> {
    return this.serial(async () => {
      if (this.slots.size === 0) {
        const booted = await Promise.allSettled(
          Array.from({ length: this.options.workers }, () => this.fork()),
        );
        const failed = booted.find((b) => b.status === 'rejected');
        if (failed) throw failed.reason as Error;
      }
      await probeNewAddresses(config, this.ports);
      const input = plainInput(config.input);
      const slots = [...this.slots.values()];
      const summary = await this.switchAll(slots, input);
      this.committed = input;
      return summary;
    });
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const t of this.respawnTimers) clearTimeout(t);
    this.respawnTimers.clear();
    const exits = [...this.slots.values()].map(({ worker }) => {
      const exited = new Promise<void>((resolve) => {
        if (worker.isDead()) resolve();
        else worker.once('exit', () => resolve());
      });
      send(worker, { nc: 'stop', graceMs });
      // A worker drains within graceMs; one that does not exit shortly after is cut.
      const timer = setTimeout(() => worker.process.kill('SIGKILL'), graceMs + 5_000);
      return exited.finally(() => clearTimeout(timer));
    });
    await Promise.all(exits);
    this.slots.clear();
    if (this.ownRunDir) rmSync(this.runDir, { recursive: true, force: true });
  }

  /** Kills every worker at once (a second SIGINT). */
  kill(): void {
    this.stopping = true;
    for (const { worker } of this.slots.values()) worker.process.kill('SIGKILL');
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forks one worker and resolves once it listens for orders. */
  private fork(): Promise<Slot> {
    const env: Record<string, string> = { NODECADDY_RUN_DIR: this.runDir, ...missingMemoryEnv() };
    const worker = cluster.fork(env);
    const slot: Slot = { worker, startedAt: Date.now() };
    this.slots.set(worker.id, slot);
    return answer(worker, (m) => m.nc === 'hello').then(() => {
      // Before its first prepare (messages arrive in order): it never serves without the others' certificates.
      this.certificates.attach(worker);
      return slot;
    });
  }

  /** Two-phase switch of the given workers to `input`: all commit, or all abort and it throws. */
  private async switchAll(slots: readonly Slot[], input: CaddyfileInput): Promise<ApplySummary> {
    const id = ++this.switchIds;
    const replies = await Promise.allSettled(
      slots.map(async ({ worker }) => {
        const reply = answer(worker, (m) => m.nc === 'prepared' && m.id === id);
        send(worker, { nc: 'prepare', id, input });
        const m = await reply;
        if (m.nc === 'prepared' && !m.ok) throw new Error(m.error);
        return m;
      }),
    );
    const failure = replies.find((r) => r.status === 'rejected');
    if (failure) {
      for (const { worker } of slots) send(worker, { nc: 'abort', id });
      throw failure.reason as Error;
    }
    const committed = await Promise.all(
      slots.map(({ worker }) => {
        const reply = answer(worker, (m) => m.nc === 'committed' && m.id === id);
        send(worker, { nc: 'commit', id });
        return reply;
      }),
    );
    const first = replies[0] as PromiseFulfilledResult<ToPrimary>;
    if (first.value.nc === 'prepared' && first.value.ok) this.ports = new Map(first.value.ports);
    const summary = committed[0];
    if (summary?.nc !== 'committed') throw new Error('no worker committed');
    return summary.summary;
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.slots.get(worker.id);
    if (!slot) return;
    this.slots.delete(worker.id);
    if (this.stopping) return;
    const lived = Date.now() - slot.startedAt;
    this.quickCrashes = lived < STABLE_AFTER_MS ? this.quickCrashes + 1 : 0;
    const delay = this.quickCrashes <= 1 ? 0 : Math.min(100 * 2 ** (this.quickCrashes - 2), MAX_BACKOFF_MS);
    this.log.error(
      { pid: worker.process.pid, code, signal, restartInMs: delay },
      'worker exited unexpectedly; starting a replacement',
    );
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      void this.serial(() => this.replace()).catch((err: unknown) =>
        this.log.error({ err }, 'replacement worker failed to start'),
      );
    }, delay);
    this.respawnTimers.add(timer);
  }

  /** Starts a worker on the committed config; if it cannot serve it, kills it (which retries later). */
  private async replace(): Promise<void> {
    if (this.stopping || !this.committed) return;
    let slot: Slot | undefined;
    try {
      slot = await this.fork();
      await this.switchAll([slot], this.committed);
      this.log.info({ pid: slot.worker.process.pid }, 'replacement worker serving');
    } catch (err) {
      slot?.worker.process.kill('SIGKILL');
      throw err;
    }
  }
}

function send(worker: Worker, msg: ToWorker): void {
  if (!worker.isConnected()) return;
  try {
    worker.send(msg);
  } catch {
    /* the worker is going away; its exit is handled elsewhere */
  }
}

/** The worker's next message that matches; rejects when the worker exits or does not answer in time. */
function answer(worker: Worker, match: (m: ToPrimary) => boolean): Promise<ToPrimary> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: unknown) => {
      if (!isOurs<ToPrimary>(msg) || !match(msg)) return;
      done();
      resolve(msg);
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`worker ${worker.process.pid} exited (${signal ?? code}) before answering`));
    };
    const timer = setTimeout(() => {
      done();
      worker.process.kill('SIGKILL');
      reject(new Error(`worker ${worker.process.pid} did not answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
    }
    worker.on('message', onMessage);
    worker.on('exit', onExit);
  });
}

/**
 * Binds and releases every address the config adds, here in the primary, before any worker tries. A worker
 * whose listen() fails keeps a stale handle in Node's cluster bookkeeping, and Node 24 then fails an internal
 * assertion on the next listen() of that address: a reload retried after the port was freed would never
 * succeed. So workers are only asked to bind addresses known to be free (a port taken in between is a race
 * we accept). Port 0 (any free port) needs no check.
 */
async function probeNewAddresses(config: Config, bound: ReadonlyMap<string, number>): Promise<void> {
  for (const spec of config.listeners.values()) {
    if (spec.port === 0 || bound.has(spec.key)) continue;
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', (err: NodeJS.ErrnoException) => reject(listenError(spec.host, spec.port, err)));
      probe.listen({ host: spec.host || undefined, port: spec.port, exclusive: true }, () =>
        probe.close(() => resolve()),
      );
    });
  }
}
