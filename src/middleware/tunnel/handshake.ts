// Accepting a tunnel client: secret, name, limits, then the WebSocket and the HTTP/2 session over it.
import { hostOnly } from '../../core/vhost.js';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import { clientIp } from '../../core/forwarded.js';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  H_DETAIL,
  H_ERROR,
  H_SECRET,
  H_TOKEN,
  H_VERSION,
  PROTOCOL_VERSION,
  isValidName,
  secretMatches,
  type RefusalCode,
} from '../../tunnel/protocol.js';
import { connectH2 } from '../../tunnel/transport.js';
import { secretId, type TunnelSettings } from './options.js';
import type { SiteTunnels } from './registry.js';
import { TunnelSession } from './session.js';

// One WebSocket server for every tunnel site: it only performs handshakes (noServer), holds no sockets.
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });

function refuse(status: number, code: RefusalCode, detail: string): HttpError {
  return new HttpError(status, detail, { headers: { [H_ERROR]: code, [H_DETAIL]: detail }, detail });
}

/**
 * The public host a client may claim: one label in front of a wildcard site's suffix (the router already
 * guarantees that much), or the site's own host for an exact site. Catch-all sites take any valid host.
 */
function claimedHost(ctx: RequestContext): string | undefined {
  const host = hostOnly(ctx.req.headers.host ?? '');
  const site = ctx.site.config.address.host;
  const label = host.split('.')[0];
  if (site.startsWith('*.'))
    return host === `${label}.${site.slice(2)}` && isValidName(label) ? host : undefined;
  if (host.split('.').every(isValidName)) return host;
  return undefined;
}

/** The handshake of a client on this site: `settings` are the site's own (its secrets open it, no other). */
export async function acceptTunnel(
  ctx: RequestContext,
  site: SiteTunnels,
  settings: TunnelSettings,
): Promise<void> {
  const { log } = settings;
  const headers = ctx.req.headers;
  const remote = clientIp(ctx.req.socket.remoteAddress);
  if (headers[H_VERSION] !== PROTOCOL_VERSION) {
    throw refuse(400, 'bad-version', `tunnel protocol version ${PROTOCOL_VERSION} required`);
  }
  const index = secretMatches(String(headers[H_SECRET] ?? ''), settings.secrets);
  if (index < 0) {
    log.warn({ site: ctx.site.label, host: headers.host, remote }, 'tunnel refused: wrong secret');
    throw refuse(401, 'wrong-secret', 'the tunnel secret is wrong');
  }
  const host = claimedHost(ctx);
  if (!host) {
    log.warn({ site: ctx.site.label, host: headers.host, remote }, 'tunnel refused: name not allowed');
    throw refuse(403, 'bad-name', `the name in ${String(headers.host)} does not fit ${ctx.site.label}`);
  }
  const token = String(headers[H_TOKEN] ?? '');
  if (token.length < 16) throw refuse(400, 'bad-version', 'a client token is required');
  const sid = secretId(settings.secrets[index]);
  if (site.countFor(sid) >= settings.maxSessions) {
    log.warn({ host, remote }, 'tunnel refused: too many sessions for this secret');
    throw refuse(429, 'too-many-sessions', `this secret already holds ${settings.maxSessions} tunnels`);
  }
  if ((await site.claim(host, token, sid)) === 'taken') {
    log.warn({ host, remote }, 'tunnel refused: name held by another client');
    throw refuse(409, 'name-taken', `${host} is in use by another tunnel client`);
  }
  let socket;
  try {
    // Set before the claim, which ends the response for the log: the access log must say 101, not 200.
    ctx.res.statusCode = 101;
    socket = ctx.upgrade!.claim();
  } catch (err) {
    await site.unclaim(host, token);
    throw err;
  }
  // handleUpgrade answers a malformed handshake itself and never calls back: then the socket just closes.
  const ws = await new Promise<WebSocket | undefined>((resolve) => {
    socket.once('close', () => resolve(undefined));
    wss.handleUpgrade(ctx.req, socket, ctx.upgrade!.head, resolve);
  });
  if (!ws) {
    await site.unclaim(host, token);
    return;
  }
  ws.on('error', () => ws.terminate());
  let h2;
  try {
    h2 = await connectH2(ws, settings.handshakeTimeoutMs);
  } catch (err) {
    await site.unclaim(host, token);
    log.warn({ host, remote, err: (err as Error).message }, 'tunnel handshake failed');
    return;
  }
  const session = new TunnelSession({
    host,
    token,
    secretId: sid,
    remote,
    ws,
    h2,
    settings: () => site.settings,
  });
  site.attach(host, session);
  log.info({ host, remote }, 'tunnel connected');
  session.onClose((_s, reason) => log.info({ host, remote, reason }, 'tunnel disconnected'));
}
