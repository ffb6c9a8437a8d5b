// One upstream host's live state: in-flight count, passive failures and the active health verdict.
// Shared by proxy and fastcgi (and anything else that balances over backends). What outlives one config
// (counters, the last health verdict) is kept per name in stats.ts.
import { recordHealthCheck, upstreamStats, type UpstreamStats } from './stats.js';

export interface HostLimits {
  /** Failures within failTimeoutMs that make the host down (Caddy `max_fails`, ≥ 1). */
  readonly maxFails: number;
  /** How long a failure counts; 0 disables passive health (Caddy `fail_timeout`, default 0). */
  readonly failTimeoutMs: number;
  /** Concurrent requests at which the host is full; 0 = unlimited (Caddy `max_conns`). */
  readonly maxConns: number;
}

export const DEFAULT_HOST_LIMITS: HostLimits = { maxFails: 1, failTimeoutMs: 0, maxConns: 0 };

export class UpstreamHost {
  /** How the host is named in config, logs and `{upstream}` (e.g. `http://127.0.0.1:8080`, `unix:/run/a.sock`). */
  readonly name: string;
  readonly limits: HostLimits;
  /** Requests in flight to this host (least_conn, max_conns). */
  conns = 0;
  /** Counters and health verdict shared by every host of this name, across reloads. */
  readonly stats: UpstreamStats;
  private failedCheck = false;
  /** When each counted failure happened (ms, monotonic), oldest first. */
  private readonly failures: number[] = [];

  constructor(name: string, limits: HostLimits = DEFAULT_HOST_LIMITS) {
    this.name = name;
    this.limits = limits;
    this.stats = upstreamStats(name);
  }

  /** Set by active health checks; an unhealthy host takes no traffic until a check passes. */
  get unhealthy(): boolean {
    return this.failedCheck;
  }

  set unhealthy(value: boolean) {
    this.failedCheck = value;
    recordHealthCheck(this.stats, !value);
  }

  /** Its config now serves: the host shows in /upstreams and the healthy gauge until taken out. */
  putInService(): void {
    this.stats.inService.add(this);
    this.stats.everInService = true;
  }

  takeOutOfService(): void {
    this.stats.inService.delete(this);
  }

  /** Failures still counting (within fail_timeout). */
  get fails(): number {
    this.prune(performance.now());
    return this.failures.length;
  }

  /** Down: failed an active check, or too many recent passive failures. */
  isDown(): boolean {
    if (this.unhealthy) return true;
    return this.limits.failTimeoutMs > 0 && this.fails >= this.limits.maxFails;
  }

  isFull(): boolean {
    return this.limits.maxConns > 0 && this.conns >= this.limits.maxConns;
  }

  /** Can take a request now. */
  available(): boolean {
    return !this.isDown() && !this.isFull();
  }

  /** A transport failure (connect refused, reset, timeout): counts for fail_timeout, if enabled. */
  recordFailure(): void {
    this.stats.failures++;
    if (this.limits.failTimeoutMs <= 0) return;
    const now = performance.now();
    this.prune(now);
    this.failures.push(now);
  }

  /** The upstream answered with this status (for its metrics). */
  recordResponse(status: number): void {
    this.stats.recordResponse(status);
  }

  /** Marks a request as started; call the returned function exactly once when it ends. */
  acquire(): () => void {
    this.conns++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.conns--;
    };
  }

  private prune(now: number): void {
    const horizon = now - this.limits.failTimeoutMs;
    let drop = 0;
    while (drop < this.failures.length && this.failures[drop] <= horizon) drop++;
    if (drop > 0) this.failures.splice(0, drop);
  }
}
