// Fixtures for the relay between instances, all real servers in this process: a target (the tunnel client's
// local app: HTTP on a unix socket, reached through the unix-socket relay's PeerUpstream as a holder reaches
// the worker holding a tunnel), the holder's relay listener, and a front server (the relaying instance) that
// relays every visitor request through a RelayClient as the tunnel middleware does.
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { RelayClient } from '../../src/cluster/relay/client.js';
import { startRelayServer, type RelayHandler } from '../../src/cluster/relay/server.js';
import { clientIp, setForwardedHeaders, withoutHopByHop } from '../../src/core/forwarded.js';
import { silentLogger } from '../../src/core/logger.js';
import { HookedResponse } from '../../src/core/response.js';
import { upgradeResponse } from '../../src/core/upgrade.js';
import { hostOnly } from '../../src/core/vhost.js';
import { PeerUpstream } from '../../src/middleware/tunnel/peer.js';
import { relay, TunnelError, type Forwarded } from '../../src/middleware/tunnel/relay.js';
import { H_DETAIL, H_ERROR } from '../../src/tunnel/protocol.js';

export const CLUSTER_SECRET = 'relay-test-secret-0123456789';
export const SITE = '*.example#abc';
export const HOST = 'alice.example';

/** The tunnel client's app: routes the relay tests use, with what it saw. */
export class Target extends EventEmitter {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'relay-target-'));
  readonly socket = path.join(this.dir, 'target.sock');
  /** Bytes /big has produced so far (it produces only as fast as they are taken). */
  produced = 0;
  private readonly server = http.createServer((req, res) => this.serve(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });
  /** Called when the SSE route may send its next event. */
  nextEvent: (() => void) | undefined;

  async start(): Promise<void> {
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (req.url === '/ws-refused') {
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\nconnection: close\r\n\r\nrefused');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.emit('ws', ws, req);
        ws.on('message', (data: Buffer, binary) => {
          if (data.toString() === 'close-please') ws.close(4001, 'asked');
          else ws.send(data, { binary });
        });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(this.socket, resolve));
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    this.emit('request', req, res);
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1 << 20) chunks.push(c);
      });
      req.on('end', () => {
        const body = JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          size,
          body: size <= 1 << 20 ? Buffer.concat(chunks).toString() : '',
        });
        res.writeHead(201, {
          'content-type': 'application/json',
          'x-target': 'yes',
          'set-cookie': ['a=1', 'b=2'],
        });
        res.end(body);
      });
      return;
    }
    if (url.pathname === '/big') {
      const total = Number(url.searchParams.get('n'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (this.produced < total) {
          const n = Math.min(chunk.length, total - this.produced);
          this.produced += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const send = () => {
        n++;
        res.write(`data: event ${n}\n\n`);
        if (n === 3) res.end();
      };
      this.nextEvent = send;
      send();
      return;
    }
    if (url.pathname === '/refuse') {
      res.writeHead(401, {
        [H_ERROR]: 'unauthorized',
        [H_DETAIL]: 'visitor credentials needed',
        'www-authenticate': 'Basic realm="tunnel"',
        'content-length': 0,
      });
      res.end();
      return;
    }
    // /hold and /slow: no answer until the request goes away.
    if (url.pathname === '/hold' || url.pathname === '/slow') return;
    res.writeHead(404).end();
  }
}

/** A relaying instance: relays every visitor request to the tunnel's holder through the client. */
export class Front {
  readonly errors: TunnelError[] = [];
  private readonly server: http.Server;

  constructor(
    readonly client: RelayClient,
    private readonly address: () => string,
    private readonly site = SITE,
    // Longer than any wait of a test: a missing cancel must fail the test, not be cured by this timeout.
    private readonly timeoutMs = 120_000,
  ) {
    this.server = http.createServer({ ServerResponse: HookedResponse }, (req, res) => {
      const body = req.headers['content-length'] || req.headers['transfer-encoding'] ? req : null;
      this.relay(req, res, body, undefined);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const { res, upgrade } = upgradeResponse(req, socket, head);
      this.relay(req, res, null, upgrade);
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.client.close();
  }

  private relay(
    req: IncomingMessage,
    res: ServerResponse,
    body: IncomingMessage | null,
    upgrade: ReturnType<typeof upgradeResponse>['upgrade'] | undefined,
  ): void {
    const headers = withoutHopByHop(req.headers);
    setForwardedHeaders(headers, req.headers, { ip: clientIp(req.socket.remoteAddress), tls: false });
    const authority = req.headers.host ?? '';
    const fwd: Forwarded = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      authority,
      headers,
      protocol: upgrade?.protocol,
    };
    const upstream = this.client.upstream(this.address(), this.site, hostOnly(authority), this.timeoutMs);
    relay(res, upgrade, fwd, body, upstream).catch((err: unknown) => {
      if (!(err instanceof TunnelError)) throw err;
      this.errors.push(err);
      if (res.headersSent || res.destroyed) return;
      res.writeHead(err.status, { ...err.headers, 'x-test-code': err.code, 'content-length': 0 }).end();
    });
  }
}

/** The promise, or a failure naming `what` after `ms` (a test waiting on an event that never comes). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Holds `HOST` of `SITE` (served by the target); any other name is not here. Evicts for token `tok-1`. */
export function targetHandler(target: Target, evicted: string[] = []): RelayHandler {
  return {
    upstream: (siteKey, host) =>
      siteKey === SITE && host === HOST ? new PeerUpstream(target.socket, host, 60_000) : undefined,
    evict: (siteKey, host, token) => {
      if (siteKey !== SITE || host !== HOST || token !== 'tok-1') return Promise.resolve(false);
      evicted.push(host);
      return Promise.resolve(true);
    },
  };
}

export interface Cluster {
  target: Target;
  front: Front;
  relayPort: number;
  evicted: string[];
  /** Stops the holder's relay listener alone (the rest stays up). */
  closeHolder(): Promise<void>;
  close(): Promise<void>;
}

/** Target, holder relay listener (h2c or TLS) and a front relaying to it. */
export async function startCluster(
  opts: {
    tls?: boolean;
    secret?: string;
    clientSecret?: string;
    timeoutMs?: number;
    connectTimeoutMs?: number;
  } = {},
): Promise<Cluster> {
  const target = new Target();
  await target.start();
  const evicted: string[] = [];
  const holder = await startRelayServer({
    host: '127.0.0.1',
    port: 0,
    secret: opts.secret ?? CLUSTER_SECRET,
    tls: opts.tls ?? false,
    handler: targetHandler(target, evicted),
    log: silentLogger(),
  });
  let holderClosed: Promise<void> | undefined;
  const closeHolder = () => (holderClosed ??= holder.close());
  const client = new RelayClient({
    secret: opts.clientSecret ?? CLUSTER_SECRET,
    log: silentLogger(),
    tls: () => opts.tls ?? false,
    connectTimeoutMs: opts.connectTimeoutMs,
  });
  const front = new Front(client, () => `127.0.0.1:${holder.port}`, SITE, opts.timeoutMs);
  await front.start();
  return {
    target,
    front,
    relayPort: holder.port,
    evicted,
    closeHolder,
    close: async () => {
      await front.close();
      await closeHolder();
      await target.close();
    },
  };
}
