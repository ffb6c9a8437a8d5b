// Active health checks (Caddy's health_check*): GET <upstream><path> every interval; a host is healthy while
// the status is 2xx/3xx and, if asked, the body contains a string. The first round runs at start. Checks go
// through the proxy's own client (h1/probe.ts) on connections of their own, TLS upstreams included.
import type { Backend } from './backend.js';
import type { HealthCheckConfig } from './config.js';
import { probe, probePool } from './h1/probe.js';
import type { ConnectionPool } from '../../core/h1/pool.js';
import { joinPaths } from './upstreams.js';

/** The most of a check's body we read looking for health_check_contains. */
const MAX_CHECK_BODY = 1 << 20;

export class HealthChecker {
  private readonly config: HealthCheckConfig;
  private readonly checks: { backend: Backend; pool: ConnectionPool }[];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<() => void>();
  private stopped = false;

  constructor(backends: readonly Backend[], config: HealthCheckConfig) {
    this.config = config;
    // health_check_port: the same upstream, another port.
    this.checks = backends.map((backend) => ({
      backend,
      pool: probePool(config.port ? { ...backend.dial, port: config.port } : backend.dial),
    }));
  }

  start(): void {
    void this.round();
    this.timer = setInterval(() => void this.round(), this.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const cancel of this.inFlight) cancel();
    this.inFlight.clear();
  }

  /** Checks every host at once; a host's verdict changes only when its own check finishes. */
  private async round(): Promise<void> {
    await Promise.all(
      this.checks.map(async ({ backend, pool }) => {
        const healthy = await this.check(backend, pool);
        if (!this.stopped) backend.host.unhealthy = !healthy;
      }),
    );
  }

  private async check(backend: Backend, pool: ConnectionPool): Promise<boolean> {
    const t = backend.target;
    const { path: checkPath, port, contains, timeoutMs } = this.config;
    const target = joinPaths(t.basePath, checkPath);
    const headers = {
      host: port ? `${hostOnly(t.hostHeader)}:${port}` : t.hostHeader,
      'user-agent': 'nodecaddy',
    };
    const maxBody = contains === undefined ? 0 : MAX_CHECK_BODY;
    const { result, cancel } = probe(
      pool,
      target.startsWith('/') ? target : `/${target}`,
      headers,
      timeoutMs,
      maxBody,
    );
    this.inFlight.add(cancel);
    try {
      const answer = await result;
      const statusOk = answer.statusCode >= 200 && answer.statusCode < 400;
      return statusOk && (contains === undefined || answer.body.includes(contains));
    } catch {
      return false;
    } finally {
      this.inFlight.delete(cancel);
    }
  }
}

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  const colon = hostPort.lastIndexOf(':');
  return colon >= 0 ? hostPort.slice(0, colon) : hostPort;
}
