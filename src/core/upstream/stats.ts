// What this process knows about each upstream (proxy and fastcgi backends alike), by name: counters that
// outlive a reload (a new config makes new UpstreamHosts for the same names), the hosts now in service (for
// /upstreams and the healthy gauge), and the last verdict of the active health checks, so that a check that
// turns an upstream down or up again is reported once, not on every probe nor again after a reload.
import { CODE_LABELS, codeSlot } from '../metrics/labels.js';
import { registerCollector, registerStatus, type Family, type Series } from '../metrics/registry.js';
import type { UpstreamHost } from './host.js';

export class UpstreamStats {
  readonly name: string;
  /** Transport failures (refused, reset, timed out), counted whether or not fail_timeout is on. */
  failures = 0;
  /** Responses from the upstream, by code slot (metrics/labels.ts). */
  readonly responses = new Float64Array(CODE_LABELS.length);
  /** The last active health check's verdict; true until a check says otherwise. */
  checkedHealthy = true;
  /** Hosts of running configs that use this upstream (two during a reload, or two proxy lines). */
  readonly inService = new Set<UpstreamHost>();
  /** Some running config used it: only then is it reported (not for a config that failed to load). */
  everInService = false;

  constructor(name: string) {
    this.name = name;
  }

  recordResponse(status: number): void {
    this.responses[codeSlot(status)]++;
  }
}

/** How /upstreams shows one upstream (Caddy 2's `address`, `num_requests`, `fails`, plus ours). */
export interface UpstreamStatus {
  address: string;
  /** Takes traffic: no failed active check and fewer recent failures than max_fails. */
  healthy: boolean;
  /** Requests in flight to it now. */
  num_requests: number;
  /** Failures still counting towards max_fails (within fail_timeout). */
  fails: number;
  failures_total: number;
  /** Responses received from it. */
  requests_total: number;
}

type HealthListener = (name: string, healthy: boolean) => void;

const byName = new Map<string, UpstreamStats>();
const healthListeners: HealthListener[] = [];

/** The stats of an upstream name, made on first use. */
export function upstreamStats(name: string): UpstreamStats {
  let stats = byName.get(name);
  if (!stats) {
    stats = new UpstreamStats(name);
    byName.set(name, stats);
  }
  return stats;
}

/** Called when an active health check changes an upstream's verdict (this process's view). */
export function onUpstreamHealthChange(listener: HealthListener): void {
  healthListeners.push(listener);
}

/** Records a health check's verdict; listeners hear of it only when it differs from the last one. */
export function recordHealthCheck(stats: UpstreamStats, healthy: boolean): void {
  if (stats.checkedHealthy === healthy) return;
  stats.checkedHealthy = healthy;
  for (const listener of healthListeners) listener(stats.name, healthy);
}

/** The upstreams of the running configs, as this process sees them. */
export function upstreamStatus(): UpstreamStatus[] {
  const out: UpstreamStatus[] = [];
  for (const stats of byName.values()) {
    if (stats.inService.size === 0) continue;
    let healthy = true;
    let inFlight = 0;
    let fails = 0;
    for (const host of stats.inService) {
      if (host.isDown()) healthy = false;
      inFlight += host.conns;
      fails += host.fails;
    }
    let requests = 0;
    for (const n of stats.responses) requests += n;
    out.push({
      address: stats.name,
      healthy,
      num_requests: inFlight,
      fails,
      failures_total: stats.failures,
      requests_total: requests,
    });
  }
  return out;
}

function collect(): Family[] {
  const healthy: Series[] = [];
  const responses: Series[] = [];
  const failures: Series[] = [];
  for (const status of upstreamStatus())
    healthy.push({ labels: [status.address], value: status.healthy ? 1 : 0 });
  for (const stats of byName.values()) {
    if (!stats.everInService) continue;
    failures.push({ labels: [stats.name], value: stats.failures });
    stats.responses.forEach((value, slot) => {
      if (value > 0) responses.push({ labels: [stats.name, CODE_LABELS[slot]], value });
    });
  }
  return [
    {
      name: 'nodecaddy_upstream_healthy',
      help: 'Whether a proxy or fastcgi upstream takes traffic (1) or not (0): health checks and max_fails.',
      type: 'gauge',
      labelNames: ['upstream'],
      // With several workers an upstream counts as healthy only when every worker finds it so.
      merge: 'min',
      series: healthy,
    },
    {
      name: 'nodecaddy_upstream_requests_total',
      help: 'Responses received from an upstream, by status code.',
      type: 'counter',
      labelNames: ['upstream', 'code'],
      merge: 'sum',
      series: responses,
    },
    {
      name: 'nodecaddy_upstream_failures_total',
      help: 'Requests to an upstream that failed without a response (refused, reset, timed out).',
      type: 'counter',
      labelNames: ['upstream'],
      merge: 'sum',
      series: failures,
    },
  ];
}

registerCollector(collect);
registerStatus('upstreams', upstreamStatus);
