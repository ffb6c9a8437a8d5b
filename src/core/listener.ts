// One bound socket (host:port) serving every site that shares it, over plain HTTP/1.1 or over TLS (HTTP/2 and
// HTTP/1.1 by ALPN). The routing table is swapped in one assignment on reload, so a request is routed either
// wholly by the old config or wholly by the new one; on a TLS listener the table also holds the certificates,
// so new handshakes get the new ones while open connections keep theirs.
import http from './node-http.js';
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import {
  constants as http2constants,
  type Http2SecureServer,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from './logger.js';
import type { Site } from './site.js';
import { VhostRouter } from './vhost.js';
import { parseAbsoluteForm, rawPathOf } from './context.js';
import { writeDefaultError } from './errors.js';
import { closeIfBodyUnread } from './unread-body.js';
import { InFlight } from './inflight.js';
import { applyListenerSettings, type ListenerSettings } from './listener-settings.js';
import { RequestGate, checkRequestHead } from './request-gate.js';
import { HookedResponse, type HttpResponse } from './response.js';
import type { TlsPolicy } from './tls/config.js';
import { findHttp01 } from './tls/challenge-lookup.js';
import { http01Answer } from './tls/managed.js';
import { createSecureServer, updateSecureServer } from './tls/secure-server.js';
import type { CertificateIndex } from './tls/sni.js';

/** A request of either protocol (HTTP/2 requests are Http2ServerRequest, with the same fields we read). */
export type HttpRequest = IncomingMessage;

/** What a config generation hands a listener: how to route, and how to run a routed request. */
export interface RoutingTable {
  readonly router: VhostRouter;
  /** Header size and timeouts of the sites on this listener (`limits`, `timeouts`); Node's defaults if absent. */
  readonly settings?: ListenerSettings;
  /** A TLS listener's certificates (SNI) and policy. */
  readonly tls?: { readonly certs: CertificateIndex; readonly policy: TlsPolicy };
  /** Runs the request on the site (the generation counts it as in flight until the response closes). */
  serve(site: Site, req: HttpRequest, res: HttpResponse): void;
  /** Runs an Upgrade request on the site's chain (ctx.upgrade set); returns the response bound to the socket. */
  serveUpgrade(site: Site, req: IncomingMessage, socket: Duplex, head: Buffer): ServerResponse;
}

export interface ListenerOptions {
  /** Interface to bind; '' = all interfaces. */
  host: string;
  port: number;
  log: Logger;
  /** Serve over TLS (the table must then carry certificates). */
  tls?: boolean;
}

export class Listener {
  readonly key: string;
  readonly options: ListenerOptions;
  private readonly server: HttpServer | Http2SecureServer;
  private table: RoutingTable;
  private readonly inflight = new InFlight();
  private draining = false;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly gate = new RequestGate();

  constructor(key: string, options: ListenerOptions, table: RoutingTable) {
    this.key = key;
    this.options = options;
    this.table = table;
    const onRequest = (req: HttpRequest, res: HttpResponse) => this.onRequest(req, res);
    if (options.tls) {
      if (!table.tls) throw new Error(`listener ${key}: a TLS listener needs certificates`);
      this.server = createSecureServer(table.tls.policy, table.settings, {
        current: () => this.table.tls!,
        onTlsError: (_err, socket, unknownName) => this.onTlsError(socket, unknownName),
      });
      this.server.on('request', onRequest);
      this.server.on('secureConnection', (socket: TLSSocket) => this.checkClientCertificate(socket));
      this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    } else {
      // Header and request timeouts are checked on this interval (Node's default, 30s, is too coarse for them).
      this.server = http.createServer(
        { keepAlive: true, connectionsCheckingInterval: 1000, ServerResponse: HookedResponse },
        onRequest,
      );
    }
    if (table.settings) applyListenerSettings(this.server, table.settings);
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    // CONNECT (a proxy's tunnel) is nothing we serve: say so, rather than dropping the connection.
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) =>
      endRaw(socket, 405, 'Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n'),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Node answers malformed requests itself when the socket is writable; make sure nothing lingers.
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      endRaw(socket, status);
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

  get secure(): boolean {
    return this.options.tls === true;
  }

  setTable(table: RoutingTable): void {
    this.table = table;
    if (table.settings) applyListenerSettings(this.server, table.settings);
    if (table.tls) updateSecureServer(this.server as Http2SecureServer, table.tls.certs, table.tls.policy);
  }

  private onRequest(req: HttpRequest, res: HttpResponse): void {
    this.inflight.track(res);
    const writeTimeout = this.table.settings?.timeouts.write;
    if (writeTimeout) {
      // `timeouts write`: the response must be complete this long after the request head arrived.
      const timer = setTimeout(() => res.destroy(), writeTimeout);
      res.once('close', () => clearTimeout(timer));
    }
    res.setHeader('Server', 'nodecaddy');
    const h2 = req.httpVersionMajor === 2;
    // HTTP/2 has no Host header, only :authority; routing and placeholders read Host.
    if (h2 && req.headers.host === undefined)
      req.headers.host = req.headers[':authority'] as string | undefined;
    if (this.draining && !h2) res.setHeader('Connection', 'close');
    const refused = checkRequestHead(req);
    if (refused) {
      writeDefaultError(res, refused.status, refused.headers);
      return;
    }
    if (req.url?.charCodeAt(0) !== 0x2f /* / */ && !this.toOriginForm(req, res)) return;
    // ACME HTTP-01 is answered before any site is chosen, for any Host (Caddy v1): a redirect site or a
    // site's directives never get in the way of a validation.
    const acme = this.secure ? undefined : http01Answer(req.url ?? '');
    if (acme !== undefined) return answerHttp01(res, acme);
    // A validation of an order another instance (or this one's primary) placed: the cluster has the token.
    const shared = this.secure ? undefined : findHttp01(req.url ?? '');
    if (shared) {
      void shared.then((found) =>
        found === undefined ? this.admitAndRoute(req, res, h2) : answerHttp01(res, found),
      );
      return;
    }
    this.admitAndRoute(req, res, h2);
  }

  private admitAndRoute(req: HttpRequest, res: HttpResponse, h2: boolean): void {
    if (!h2 && !this.gate.admit(req, res, () => this.route(req, res))) return;
    this.route(req, res);
  }

  private route(req: HttpRequest, res: HttpResponse): void {
    const table = this.table;
    const site = table.router.route(req.headers.host, rawPathOf(req.url ?? '/'));
    if (!site) {
      // On HTTP/2 a browser may reuse a connection for another name the certificate covers: 421 tells it to
      // open one for that name (RFC 9110 §15.5.20), as Caddy does.
      const status = req.httpVersionMajor === 2 ? 421 : 404;
      const body = `${status} Site ${req.headers.host ?? ''} is not served on this interface
`;
      closeIfBodyUnread(res);
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (table.tls?.policy.clientAuth && !this.sniMatchesHost(req)) {
      writeDefaultError(res, 403, {}, 'the TLS server name (SNI) and the Host differ');
      return;
    }
    table.serve(site, req, res);
  }

  /**
   * With client certificates on, a request must be for the name its connection was authenticated for
   * (Caddy v1's StrictHostMatching): another site's Host on this connection is a 403.
   */
  private sniMatchesHost(req: HttpRequest): boolean {
    const servername = (req.socket as TLSSocket).servername;
    if (!servername) return true;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    return host === servername.toLowerCase();
  }

  /** Upgrade requests are routed like any request, then run through the site's chain (see core/upgrade.ts). */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const table = this.table;
    const refused = checkRequestHead(req);
    const site =
      !refused && req.url?.charCodeAt(0) === 0x2f
        ? table.router.route(req.headers.host, rawPathOf(req.url))
        : undefined;
    if (!site || this.draining) {
      const status = refused?.status ?? (site ? 503 : req.url?.charCodeAt(0) === 0x2f ? 404 : 400);
      endRaw(socket, status);
      return;
    }
    const res = table.serveUpgrade(site, req, socket, head);
    this.inflight.track(res);
    res.setHeader('Server', 'nodecaddy');
  }

  /** The `clients` modes Node cannot enforce alone: `require` (any certificate) and `verify_if_given`. */
  private checkClientCertificate(socket: TLSSocket): void {
    const mode = this.table.tls?.policy.clientAuth?.mode;
    if (mode !== 'require' && mode !== 'verify_if_given') return;
    const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
    if ((mode === 'require' && !presented) || (mode === 'verify_if_given' && presented && !socket.authorized))
      socket.destroy();
  }

  private onSession(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    watchResets(session, () =>
      this.options.log.warn(
        { listener: this.key, remote: session.socket?.remoteAddress },
        'HTTP/2 connection closed: too many streams reset (a "rapid reset" flood?)',
      ),
    );
    // An idle HTTP/2 connection is closed like an idle keep-alive one (`timeouts idle`), with a GOAWAY.
    const idle = this.table.settings?.timeouts.idle ?? 0;
    if (idle > 0) session.setTimeout(idle, () => session.close());
    if (this.draining) session.close();
  }

  private onTlsError(socket: TLSSocket, unknownName: string | undefined): void {
    // Scanners and clients that give up are routine; a name we have no certificate for is worth a line.
    if (unknownName !== undefined)
      this.options.log.info(
        { listener: this.key, remote: socket.remoteAddress },
        `TLS handshake for ${JSON.stringify(unknownName)}: no certificate for that name`,
      );
  }

  /**
   * Rewrites an absolute-form target to origin-form (the authority becomes the Host); answers `OPTIONS *`
   * and rejects any other target that is not a path. Returns false when it has answered the request.
   */
  private toOriginForm(req: HttpRequest, res: HttpResponse): boolean {
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
   * Stops accepting, lets in-flight requests finish (up to graceMs), then cuts what is left. Idle keep-alive
   * connections are closed at once; busy ones are told `Connection: close`; HTTP/2 sessions get a GOAWAY.
   */
  async close(graceMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.server instanceof http.Server) this.server.closeIdleConnections();
    for (const session of this.sessions) session.close();
    await this.inflight.drained(graceMs);
    // Whatever is still open after the grace period (or idle after its last response) is closed now.
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** Streams of one connection ended by a reset in one second before it is closed (a legitimate client resets few). */
const MAX_RESETS_PER_SECOND = 200;

/**
 * Ends an HTTP/2 connection whose streams are being reset en masse (CVE-2023-44487, "rapid reset"). nghttp2 rate
 * limits incoming RST_STREAM frames itself, but then only stops reading: the connection stayed open, doing
 * nothing, until the idle timeout.
 */
function watchResets(session: ServerHttp2Session, onFlood: () => void): void {
  let windowStart = 0;
  let resets = 0;
  session.on('stream', (stream: ServerHttp2Stream) =>
    stream.once('close', () => {
      if (stream.rstCode === http2constants.NGHTTP2_NO_ERROR || session.destroyed) return;
      const now = Date.now();
      if (now - windowStart > 1000) {
        windowStart = now;
        resets = 0;
      }
      if (++resets > MAX_RESETS_PER_SECOND) {
        onFlood();
        session.destroy();
      }
    }),
  );
}

/** Answers on a raw socket (no response object: a bad request head, an upgrade we refuse) and closes it. */
function endRaw(socket: Duplex, status: number, extraHeaders = ''): void {
  socket.on('error', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extraHeaders}Connection: close\r\nContent-Length: 0\r\n\r\n`,
  );
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

function answerHttp01(res: HttpResponse, keyAuthorization: string): void {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(keyAuthorization),
  });
  res.end(keyAuthorization);
}
