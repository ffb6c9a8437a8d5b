// What every process reports to the admin endpoint, and how the primary gathers them. A report is this
// process's metric families and status lists (plain JSON). With workers the primary asks each one over the
// cluster channel (its own `admin` messages, beside the cluster glue's `nc` ones) and adds the answers to its
// own; a worker that does not answer in time is left out of that scrape. Counters of workers that died are
// kept (their last report) so that a total never goes down when a worker is replaced.
import cluster, { type Worker } from 'node:cluster';
import {
  collectFamilies,
  cumulativeOnly,
  mergeFamilies,
  readStatus,
  type Family,
  type StatusRow,
} from '../core/metrics/registry.js';
import type { UpstreamStatus } from '../core/upstream/stats.js';

export interface ProcessReport {
  /** `primary`, or the cluster worker's id. */
  worker: string;
  families: Family[];
  status: Record<string, StatusRow[]>;
}

/** Admin messages over the cluster channel (primary ↔ worker). */
export type AdminMessage =
  | { admin: 'report'; id: number }
  | { admin: 'report'; id: number; report: ProcessReport }
  | { admin: 'health'; upstream: string; healthy: boolean };

export function isAdminMessage(msg: unknown): msg is AdminMessage {
  return typeof msg === 'object' && msg !== null && typeof (msg as { admin?: unknown }).admin === 'string';
}

/** Longest wait for a worker's report. */
const REPORT_TIMEOUT_MS = 3000;

export async function localReport(worker: string): Promise<ProcessReport> {
  return { worker, families: await collectFamilies(), status: readStatus() };
}

/** A worker answers the primary's report requests (installed once, at the worker's start). */
export function answerReportRequests(worker: string): void {
  process.on('message', (msg: unknown) => {
    if (!isAdminMessage(msg) || msg.admin !== 'report' || 'report' in msg) return;
    void localReport(worker).then(
      (report) => {
        if (process.connected) process.send?.({ admin: 'report', id: msg.id, report } satisfies AdminMessage);
      },
      () => undefined,
    );
  });
}

/** Gathers reports: this process's, and with workers every live worker's. */
export class Reports {
  private nextId = 0;
  /** Report requests sent and not answered yet, by id (each goes to one worker). */
  private readonly waiting = new Map<number, (r: ProcessReport) => void>();
  private readonly lastReport = new Map<number, Family[]>();
  /** Counters and histograms of workers that are gone. */
  private retired: Family[] = [];

  constructor(private readonly self: string) {
    if (!cluster.isPrimary) return;
    cluster.on('message', (_worker: Worker, msg: unknown) => {
      if (isAdminMessage(msg) && msg.admin === 'report' && 'report' in msg)
        this.waiting.get(msg.id)?.(msg.report);
    });
    cluster.on('exit', (worker: Worker) => {
      const last = this.lastReport.get(worker.id);
      this.lastReport.delete(worker.id);
      if (last) this.retired = mergeFamilies([this.retired, cumulativeOnly(last)]);
    });
  }

  async gather(): Promise<ProcessReport[]> {
    const workers = cluster.isPrimary ? Object.values(cluster.workers ?? {}) : [];
    const live = workers.filter((w): w is Worker => w !== undefined && w.isConnected());
    const [own, ...others] = await Promise.all([localReport(this.self), ...live.map((w) => this.ask(w))]);
    const reports = [own];
    for (const r of others) if (r) reports.push(r);
    return reports;
  }

  /** Every process's families added up, with what retired workers counted. */
  async metrics(): Promise<Family[]> {
    const reports = await this.gather();
    return mergeFamilies([...reports.map((r) => r.families), this.retired]);
  }

  private ask(worker: Worker): Promise<ProcessReport | undefined> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      const done = (report: ProcessReport | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        if (report) this.lastReport.set(worker.id, report.families);
        resolve(report);
      };
      const timer = setTimeout(() => done(undefined), REPORT_TIMEOUT_MS);
      this.waiting.set(id, done);
      try {
        worker.send({ admin: 'report', id } satisfies AdminMessage);
      } catch {
        done(undefined);
      }
    });
  }
}

/** One row per upstream over every process: healthy only if healthy everywhere, the numbers added up. */
export function mergeUpstreams(reports: readonly ProcessReport[]): UpstreamStatus[] {
  const byAddress = new Map<string, UpstreamStatus>();
  for (const r of reports) {
    for (const row of (r.status.upstreams ?? []) as UpstreamStatus[]) {
      const have = byAddress.get(row.address);
      if (!have) {
        byAddress.set(row.address, { ...row });
        continue;
      }
      have.healthy &&= row.healthy;
      have.num_requests += row.num_requests;
      have.fails += row.fails;
      have.failures_total += row.failures_total;
      have.requests_total += row.requests_total;
    }
  }
  return [...byAddress.values()];
}

/** A status list of every process, each row with the worker that has it. */
export function concatStatus(reports: readonly ProcessReport[], name: string): StatusRow[] {
  return reports.flatMap((r) => (r.status[name] ?? []).map((row) => ({ ...row, worker: r.worker })));
}
