// One bound socket (host:port) serving every site that shares it. The routing table is swapped in one
// assignment on reload, so a request is routed either wholly by the old config or wholly by the new one.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from './logger.js';
import type { Site } from './site.js';
import { VhostRouter } from './vhost.js';
import { parseAbsoluteForm, rawPathOf } from './context.js';
import { writeDefaultError } from './errors.js';
import { closeIfBodyUnread } from './unread-body.js';
import { InFlight } from './inflight.js';
import { applyListenerSettings, type ListenerSettings } from './listener-settings.js';
import { HookedResponse } from './response-hooks.js';

/** What a config generation hands a listener: how to route, and how to run a routed request. */
export interface RoutingTable {
  readonly router: VhostRouter;
  /** Header size and timeouts of the sites on this listener (`limits`, `timeouts`); Node's defaults if absent. */
  readonly settings?: ListenerSettings;
  /** Runs the request on the site (the generation counts it as in flight until the response closes). */
  serve(site: Site, req: IncomingMessage, res: ServerResponse): void;
  /** Runs an Upgrade request on the site's chain (ctx.upgrade set); returns the response bound to the socket. */
  serveUpgrade(site: Site, req: IncomingMessage, socket: Duplex, head: Buffer): ServerResponse;
}

export interface ListenerOptions {
  /** Interface to bind; '' = all interfaces. */
  host: string;
  port: number;
  log: Logger;
}

export class Listener {
  readonly key: string;
  readonly options: ListenerOptions;
  private readonly server: http.Server;
  private table: RoutingTable;
  private readonly inflight = new InFlight();
  private draining = false;
  private readonly sockets = new Set<Socket>();

  constructor(key: string, options: ListenerOptions, table: RoutingTable) {
    this.key = key;
    this.options = options;
    this.table = table;
    // Header and request timeouts are checked on this interval (Node's default, 30s, is too coarse for them).
    this.server = http.createServer(
      { keepAlive: true, connectionsCheckingInterval: 1000, ServerResponse: HookedResponse },
      (req, res) => this.onRequest(req, res),
    );
    if (table.settings) applyListenerSettings(this.server, table.settings);
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Node answers malformed requests itself when the socket is writable; make sure nothing lingers.
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
    });
  }

  /** Binds the socket. Rejects with a readable message when the address cannot be bound. */
  listen(): Promise<void> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenError(host, port, err));
      this.server.once('error', onError);
      // Not exclusive: cluster workers share one socket per host:port through the primary.
      this.server.listen({ host: host || undefined, port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) =>
          this.options.log.error({ err, listener: this.key }, 'listener error'),
        );
        resolve();
      });
    });
  }

  /** The port actually bound (differs from the configured one when that was 0). */
  get port(): number {
    const addr = this.server.address() as AddressInfo | null;
    return addr ? addr.port : this.options.port;
  }

  setTable(table: RoutingTable): void {
    this.table = table;
    if (table.settings) applyListenerSettings(this.server, table.settings);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.inflight.track(res);
    const writeTimeout = this.table.settings?.timeouts.write;
    if (writeTimeout) {
      // `timeouts write`: the response must be complete this long after the request head arrived.
      const timer = setTimeout(() => res.destroy(), writeTimeout);
      res.once('close', () => clearTimeout(timer));
    }
    res.setHeader('Server', 'nodecaddy');
    if (this.draining) res.setHeader('Connection', 'close');
    if (req.url?.charCodeAt(0) !== 0x2f /* / */ && !this.toOriginForm(req, res)) return;
    const table = this.table;
    const site = table.router.route(req.headers.host, rawPathOf(req.url ?? '/'));
    if (!site) {
      const body = `404 Site ${req.headers.host ?? ''} is not served on this interface\n`;
      closeIfBodyUnread(res);
      res.writeHead(404, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    table.serve(site, req, res);
  }

  /** Upgrade requests are routed like any request, then run through the site's chain (see core/upgrade.ts). */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const table = this.table;
    const site =
      req.url?.charCodeAt(0) === 0x2f ? table.router.route(req.headers.host, rawPathOf(req.url)) : undefined;
    if (!site || this.draining) {
      socket.on('error', () => socket.destroy());
      const status = site ? 503 : req.url?.charCodeAt(0) === 0x2f ? 404 : 400;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      return;
    }
    const res = table.serveUpgrade(site, req, socket, head);
    this.inflight.track(res);
    res.setHeader('Server', 'nodecaddy');
  }

  /**
   * Rewrites an absolute-form target to origin-form (the authority becomes the Host); answers `OPTIONS *`
   * and rejects any other target that is not a path. Returns false when it has answered the request.
   */
  private toOriginForm(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    if (url === '*' && req.method === 'OPTIONS') {
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
      return false;
    }
    const abs = parseAbsoluteForm(url);
    if (!abs) {
      writeDefaultError(res, 400);
      return false;
    }
    req.url = abs.target;
    req.headers.host = abs.authority;
    return true;
  }

  /**
   * Stops accepting, lets in-flight requests finish (up to graceMs), then cuts what is left.
   * Idle keep-alive connections are closed at once; busy ones are told `Connection: close`.
   */
  async close(graceMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await this.inflight.drained(graceMs);
    // Whatever is still open after the grace period (or idle after its last response) is closed now.
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** Go's wording for a failed bind (`listen tcp :80: address already in use`), as Caddy reports it. */
export function listenError(host: string, port: number, err: NodeJS.ErrnoException): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const why =
    err.code === 'EADDRINUSE'
      ? 'address already in use'
      : err.code === 'EACCES'
        ? 'permission denied'
        : err.code === 'EADDRNOTAVAIL'
          ? 'cannot assign requested address'
          : err.message;
  return new Error(`listen tcp ${where}: ${why}`, { cause: err });
}
