// One log line when an active health check takes an upstream out of service, and one when it comes back;
// never one per probe. With workers each worker probes on its own: they tell the primary of every change of
// their verdict, and the primary logs when the whole server's view changes (down as soon as one worker finds
// it down, up again once every worker finds it up), so a transition is one line, not one per worker.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../core/logger.js';
import { onUpstreamHealthChange } from '../core/upstream/stats.js';
import { isAdminMessage, type AdminMessage } from './reports.js';

export class HealthLog {
  /** upstream → process → its last verdict. */
  private readonly verdicts = new Map<string, Map<string, boolean>>();
  private readonly down = new Set<string>();

  constructor(private readonly log: Logger) {}

  record(who: string, upstream: string, healthy: boolean): void {
    let byProcess = this.verdicts.get(upstream);
    if (!byProcess) {
      byProcess = new Map();
      this.verdicts.set(upstream, byProcess);
    }
    byProcess.set(who, healthy);
    const anyDown = [...byProcess.values()].includes(false);
    if (anyDown && !this.down.has(upstream)) {
      this.down.add(upstream);
      this.log.warn({ upstream }, 'upstream is down: its health check failed');
    } else if (!anyDown && this.down.has(upstream)) {
      this.down.delete(upstream);
      this.log.info({ upstream }, 'upstream is up again: its health check passed');
    }
  }

  /** A process is gone: its verdicts no longer count (its replacement reports its own). */
  forget(who: string): void {
    for (const byProcess of this.verdicts.values()) byProcess.delete(who);
  }
}

/** In the process that logs (the primary, or the only process): hear this process's and the workers' checks. */
export function logHealthChanges(log: Logger): HealthLog {
  const health = new HealthLog(log);
  onUpstreamHealthChange((upstream, healthy) => health.record('primary', upstream, healthy));
  if (cluster.isPrimary) {
    cluster.on('message', (worker: Worker, msg: unknown) => {
      if (isAdminMessage(msg) && msg.admin === 'health')
        health.record(String(worker.id), msg.upstream, msg.healthy);
    });
    cluster.on('exit', (worker: Worker) => health.forget(String(worker.id)));
  }
  return health;
}

/** In a worker: tell the primary of every change of this worker's verdicts. */
export function forwardHealthChanges(): void {
  onUpstreamHealthChange((upstream, healthy) => {
    // A worker whose primary is gone is on its way out; the change has nobody to tell.
    if (process.connected) process.send?.({ admin: 'health', upstream, healthy } satisfies AdminMessage);
  });
}
