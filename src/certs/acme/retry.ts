// When to try again after a failed order (certmagic's schedule of Caddy v1's time, tls.md §1.6): from 2.6 s,
// doubling, at most a day apart; a CA that says how long to wait (rate limited, Retry-After) is obeyed.

const FIRST_RETRY_MS = 2_600;
const MAX_RETRY_MS = 24 * 3600 * 1000;
/** After a rate-limit answer, nothing sooner than this (Let's Encrypt's limits are per hour and per week). */
const RATE_LIMITED_MS = 3600 * 1000;

/** The wait before attempt `attempt` + 1 (attempt 1 is the first that failed). */
export function retryDelay(attempt: number, err: unknown): number {
  const backoff = Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, attempt - 1), MAX_RETRY_MS);
  return isRateLimited(err) ? Math.max(backoff, RATE_LIMITED_MS) : backoff;
}

function isRateLimited(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /rateLimited|too many/i.test(message);
}

/** A short description of a duration, for log lines. */
export function describeDelay(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3600_000).toFixed(1)} h`;
}
