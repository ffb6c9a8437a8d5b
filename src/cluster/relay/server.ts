// STAND-IN for the cluster-relay branch's HTTP/2 relay (same interface): HTTP/1.1 over TCP with a key derived
// from the cluster secret in a header, no TLS. Only here so the tunnel registry's end-to-end tests run before
// the real transport lands; the lead merges the real files over this one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../core/logger.js';
import { HookedResponse } from '../../core/response.js';
import { upgradeResponse } from '../../core/upgrade.js';
import { withoutHopByHop } from '../../core/forwarded.js';
import { relay, TunnelError, type Forwarded, type Upstream } from '../../middleware/tunnel/relay.js';
import { H_DETAIL, H_ERROR } from '../../tunnel/protocol.js';

export const H_RELAY_AUTH = 'x-nodecaddy-tunnel-relay-auth';
export const H_RELAY_SITE = 'x-nodecaddy-tunnel-relay-site';
export const H_RELAY_TOKEN = 'x-nodecaddy-tunnel-relay-token';
export const EVICT_PATH = '/_nodecaddy/relay/evict';

export interface RelayHandler {
  upstream(siteKey: string, host: string): Upstream | undefined;
  evict(siteKey: string, host: string, token: string): Promise<boolean>;
}

export function relayKey(secret: string): string {
  return createHmac('sha256', secret).update('nodecaddy relay stand-in').digest('hex');
}

export function startRelayServer(options: {
  host: string;
  port: number;
  secret: string;
  tls: boolean;
  handler: RelayHandler;
  log: Logger;
}): Promise<{ port: number; close(): Promise<void> }> {
  const key = Buffer.from(relayKey(options.secret));
  const authentic = (req: IncomingMessage) => {
    const given = Buffer.from(String(req.headers[H_RELAY_AUTH] ?? ''));
    return given.length === key.length && timingSafeEqual(given, key);
  };
  const target = (req: IncomingMessage) => {
    const site = decodeURIComponent(String(req.headers[H_RELAY_SITE] ?? ''));
    const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
    delete req.headers[H_RELAY_AUTH];
    delete req.headers[H_RELAY_SITE];
    return { site, host, upstream: options.handler.upstream(site, host) };
  };
  const notHere = (host: string) => new TunnelError(502, 'not-here', `${host} is not held here`);
  const server = http.createServer({ ServerResponse: HookedResponse }, (req, res) => {
    if (!authentic(req)) {
      options.log.warn({ remote: req.socket.remoteAddress }, 'relay request refused: not authenticated');
      res.writeHead(403, { 'content-length': 0 }).end();
      return;
    }
    if (req.url === EVICT_PATH && req.method === 'DELETE') {
      const { site, host } = target(req);
      void options.handler
        .evict(site, host, String(req.headers[H_RELAY_TOKEN] ?? ''))
        .then((ok) => res.writeHead(ok ? 204 : 409, { 'content-length': 0 }).end());
      return;
    }
    void serve(req, res);
  });
  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const { host, upstream } = target(req);
    const body = req.headers['content-length'] || req.headers['transfer-encoding'] ? req : null;
    try {
      if (!upstream) throw notHere(host);
      await relay(res, undefined, incoming(req), body, upstream);
    } catch (err) {
      refuse(res, err);
    }
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!authentic(req)) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const { res, upgrade } = upgradeResponse(req, socket, head);
    const { host, upstream } = target(req);
    if (!upstream) {
      refuse(res, notHere(host));
      return;
    }
    relay(res, upgrade, incoming(req), null, upstream).catch((err: unknown) => refuse(res, err));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      server.on('error', (err) => options.log.warn({ err }, 'relay listener error'));
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The request as the relaying instance prepared it (hop-by-hop gone, X-Forwarded-* set). */
function incoming(req: IncomingMessage): Forwarded {
  const protocol = req.headers.upgrade ? String(req.headers.upgrade).toLowerCase() : undefined;
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    authority: String(req.headers.host ?? ''),
    headers: withoutHopByHop(req.headers),
    protocol,
  };
}

/** A failure, told to the relaying instance in headers it turns back into a TunnelError. */
function refuse(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = err instanceof TunnelError ? err : new TunnelError(502, 'no-tunnel', 'tunnel failed');
  res
    .writeHead(e.status, { ...e.headers, [H_ERROR]: e.code, [H_DETAIL]: e.message, 'content-length': 0 })
    .end();
}
