// Active health checks (Caddy's health_check*): GET <upstream><path> every interval; a host is healthy while
// the status is 2xx/3xx and, if asked, the body contains a string. The first round runs at start.
import http from 'node:http';
import https from 'node:https';
import type { Backend } from './backend.js';
import type { HealthCheckConfig } from './config.js';
import { joinPaths } from './upstreams.js';

/** The most of a check's body we read looking for health_check_contains. */
const MAX_CHECK_BODY = 1 << 20;

export class HealthChecker {
  private readonly backends: readonly Backend[];
  private readonly config: HealthCheckConfig;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<http.ClientRequest>();
  private stopped = false;

  constructor(backends: readonly Backend[], config: HealthCheckConfig) {
    this.backends = backends;
    this.config = config;
  }

  start(): void {
    void this.round();
    this.timer = setInterval(() => void this.round(), this.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const req of this.inFlight) req.destroy();
    this.inFlight.clear();
  }

  /** Checks every host at once; a host's verdict changes only when its own check finishes. */
  private async round(): Promise<void> {
    await Promise.all(
      this.backends.map(async (b) => {
        const healthy = await this.check(b);
        if (!this.stopped) b.host.unhealthy = !healthy;
      }),
    );
  }

  private check(backend: Backend): Promise<boolean> {
    const t = backend.target;
    const { path: checkPath, port, contains, timeoutMs } = this.config;
    const target = joinPaths(t.basePath, checkPath);
    const options: https.RequestOptions = {
      method: 'GET',
      path: target.startsWith('/') ? target : `/${target}`,
      headers: { host: port ? `${hostOnly(t.hostHeader)}:${port}` : t.hostHeader, 'user-agent': 'nodecaddy' },
      // Checks use their own short-lived connections, not the request pool.
      agent: false,
      timeout: timeoutMs,
      setHost: false,
    };
    if (t.socketPath) options.socketPath = t.socketPath;
    else {
      options.host = t.hostname;
      options.port = port || t.port;
    }
    if (t.tls) {
      const agentOpts = backend.agentOptions;
      options.rejectUnauthorized = agentOpts.rejectUnauthorized;
      options.ca = agentOpts.ca;
      options.cert = agentOpts.cert;
      options.key = agentOpts.key;
      options.servername = agentOpts.servername;
    }
    return new Promise((resolve) => {
      const req = (t.tls ? https : http).request(options, (res) => {
        const status = res.statusCode ?? 0;
        const statusOk = status >= 200 && status < 400;
        if (!statusOk || contains === undefined) {
          res.resume();
          res.on('end', () => resolve(statusOk));
          res.on('error', () => resolve(false));
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < MAX_CHECK_BODY) body += chunk;
        });
        res.on('end', () => resolve(body.includes(contains)));
        res.on('error', () => resolve(false));
      });
      this.inFlight.add(req);
      req.on('close', () => this.inFlight.delete(req));
      req.on('timeout', () => req.destroy(new Error('health check timed out')));
      req.on('error', () => resolve(false));
      req.end();
    });
  }
}

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  const colon = hostPort.lastIndexOf(':');
  return colon >= 0 ? hostPort.slice(0, colon) : hostPort;
}
