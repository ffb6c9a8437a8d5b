// After an uncaught exception the process is in a state Node documents as unsafe to go on in (a half-done
// operation may have left shared state broken): log it, stop accepting, give requests in flight a moment, and
// exit. A cluster worker is then replaced by the primary at once (with a growing delay if it keeps dying); with
// `-workers 1`, whatever supervises nodecaddy (systemd, a container runtime) restarts it on the exit code.
// An unhandled promise rejection is logged and the process goes on: no state was left half-changed by a throw.
import type { Logger } from './core/logger.js';

/** The exit code after an uncaught exception (BSD's EX_SOFTWARE). */
export const CRASH_EXIT_CODE = 70;
/** Requests in flight get this long to finish after an uncaught exception, at most. */
const CRASH_DRAIN_MS = 2000;

export function handleProcessFaults(
  log: Logger,
  stop: (graceMs: number) => Promise<unknown>,
  graceMs: number,
): void {
  let crashing = false;
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception: stopping this process, its state is unknown');
    if (crashing) return;
    crashing = true;
    const drainMs = Math.min(graceMs, CRASH_DRAIN_MS);
    setTimeout(() => process.exit(CRASH_EXIT_CODE), drainMs + 500).unref();
    void stop(drainMs).finally(() => process.exit(CRASH_EXIT_CODE));
  });
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}
