// Wiring of the observability pieces for the CLI: what a worker runs, and what the process that holds the
// Runtime runs (the primary with workers, else the only process). Request counting is on exactly when the
// admin endpoint is (-admin off: nobody could read the numbers, so nothing is counted).
import cluster from 'node:cluster';
import type { Logger } from '../core/logger.js';
import { enableRequestMetrics } from '../core/metrics/http.js';
import { startProcessMetrics } from '../core/metrics/process.js';
import type { Runtime } from '../runtime.js';
import type { AdminAddress } from './address.js';
import { forwardHealthChanges, logHealthChanges } from './health-log.js';
import { answerReportRequests, Reports } from './reports.js';
import { AdminServer } from './server.js';

export { parseAdminAddress, DEFAULT_ADMIN, type AdminAddress } from './address.js';

/** In a worker, before it serves: count, answer the primary's report requests, pass health changes on. */
export function observeWorker(admin: AdminAddress | undefined): void {
  forwardHealthChanges();
  if (!admin) return;
  const worker = String(cluster.worker?.id ?? 0);
  enableRequestMetrics(true);
  startProcessMetrics(worker);
  answerReportRequests(worker);
}

/**
 * In the process that holds the Runtime, before the config starts (health checks start with it). Returns
 * what starts the admin endpoint once the config runs; it resolves undefined when the endpoint is off or
 * could not bind (a warning has been logged then).
 */
export function observePrimary(
  admin: AdminAddress | undefined,
  log: Logger,
): (runtime: Runtime, cwd: string) => Promise<AdminServer | undefined> {
  logHealthChanges(log);
  if (!admin) return () => Promise.resolve(undefined);
  enableRequestMetrics(true);
  startProcessMetrics('primary');
  const reports = new Reports('primary');
  return async (runtime, cwd) => {
    const server = new AdminServer({ address: admin, log, runtime, reports, cwd });
    return (await server.listen()) ? server : undefined;
  };
}
