// One upstream as a running config holds it: its target, its shared health/load state, and its own
// keep-alive connection pools (per upstream, so pools and their limits never mix): our HTTP/1.1 client's
// for plain-HTTP requests, and a node:http Agent for https upstreams and WebSocket upgrades.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { UpstreamHost, type HostLimits } from '../../core/upstream/index.js';
import type { TlsConfig } from './config.js';
import { ConnectionPool, IDLE_SOCKET_MS } from './h1/pool.js';
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
  readonly agent: http.Agent;
  /** Our own client's pool, for plain-HTTP upstreams (TCP or unix socket); undefined for https. */
  readonly pool: ConnectionPool | undefined;
  /** What the agent was made with (health checks reuse the TLS settings). */
  readonly agentOptions: https.AgentOptions;

  constructor(target: UpstreamTarget, limits: HostLimits, pool: PoolOptions) {
    this.target = target;
    this.host = new UpstreamHost(target.name, limits);
    const agentOptions: https.AgentOptions = {
      keepAlive: pool.keepalive > 0,
      maxFreeSockets: Math.max(pool.keepalive, 1),
      scheduling: 'lifo',
      timeout: IDLE_SOCKET_MS,
    };
    if (pool.fallbackDelayMs !== undefined) {
      agentOptions.autoSelectFamily = true;
      agentOptions.autoSelectFamilyAttemptTimeout = Math.max(pool.fallbackDelayMs, 10);
    }
    this.agentOptions = agentOptions;
    if (target.tls) {
      agentOptions.rejectUnauthorized = !pool.tls.insecureSkipVerify;
      if (pool.tls.ca) agentOptions.ca = pool.tls.ca;
      if (pool.tls.cert) agentOptions.cert = pool.tls.cert;
      if (pool.tls.key) agentOptions.key = pool.tls.key;
      // SNI only for names; an IP address in SNI is not allowed (RFC 6066).
      if (!isIP(target.hostname)) agentOptions.servername = target.hostname;
      this.agent = new https.Agent(agentOptions);
      this.pool = undefined;
    } else {
      this.agent = new http.Agent(agentOptions);
      const dial = {
        host: target.hostname,
        port: target.port,
        socketPath: target.socketPath,
        fallbackDelayMs: pool.fallbackDelayMs,
      };
      this.pool = new ConnectionPool(dial, pool.keepalive);
    }
  }

  /** Options for one request to this upstream (everything but method, path and headers is fixed). */
  requestOptions(method: string, path: string, headers: http.OutgoingHttpHeaders): https.RequestOptions {
    const t = this.target;
    return t.socketPath
      ? { socketPath: t.socketPath, method, path, headers, agent: this.agent, setHost: false }
      : {
          host: t.hostname,
          port: t.port,
          method,
          path,
          headers,
          agent: this.agent,
          setHost: false,
        };
  }

  request(options: https.RequestOptions): http.ClientRequest {
    return this.target.tls ? https.request(options) : http.request(options);
  }

  /** Closes pooled connections; requests still running keep theirs until they end. */
  close(): void {
    this.agent.destroy();
    this.pool?.close();
  }
}
