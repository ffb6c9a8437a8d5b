// One upstream as a running config holds it: its target, its shared health/load state, and its own
// keep-alive connection pool (per upstream, so pools and their limits never mix). Every request to it, plain
// HTTP, TLS or unix socket, WebSocket switches included, goes through that pool and our HTTP/1.1 client (h1/).
import { isIP } from 'node:net';
import { UpstreamHost, type HostLimits } from '../../core/upstream/index.js';
import type { TlsConfig } from './config.js';
import { ConnectionPool, type DialOptions } from '../../core/h1/pool.js';
import type { UpstreamTarget } from './upstreams.js';

export interface PoolOptions {
  /** Idle connections kept (Caddy `keepalive`, Go's MaxIdleConnsPerHost); 0 = a new connection per request. */
  readonly keepalive: number;
  readonly tls: TlsConfig;
  readonly fallbackDelayMs: number | undefined;
}

export class Backend {
  readonly target: UpstreamTarget;
  readonly host: UpstreamHost;
  /** How to reach the upstream (health checks dial the same way, on connections of their own). */
  readonly dial: DialOptions;
  readonly pool: ConnectionPool;

  constructor(target: UpstreamTarget, limits: HostLimits, options: PoolOptions) {
    this.target = target;
    this.host = new UpstreamHost(target.name, limits);
    const tls = options.tls;
    this.dial = {
      host: target.hostname,
      port: target.port,
      socketPath: target.socketPath,
      fallbackDelayMs: options.fallbackDelayMs,
      tls: target.tls
        ? {
            // SNI only for names; an IP address in SNI is not allowed (RFC 6066).
            servername: isIP(target.hostname) ? undefined : target.hostname,
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            rejectUnauthorized: !tls.insecureSkipVerify,
          }
        : undefined,
    };
    this.pool = new ConnectionPool(this.dial, options.keepalive);
  }

  /** Closes pooled connections; requests still running keep theirs until they end. */
  close(): void {
    this.pool.close();
  }
}
