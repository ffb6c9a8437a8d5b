// Accepting a tunnel client: secret, name, limits, then the WebSocket and the mux over it.
import { hostOnly } from '../../core/vhost.js';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import { clientIp } from '../../core/forwarded.js';
import { certificateRequests } from '../../core/tls/managed.js';
import type { Logger } from '../../core/logger.js';
import type { Duplex } from 'node:stream';
import type { Mux } from '../../tunnel/mux.js';
import {
  H_BASIC_AUTH,
  H_DETAIL,
  H_ERROR,
  H_LINK,
  H_PREFER_PORT,
  H_PROTO,
  H_REMOTE_PORT,
  H_SECRET,
  H_TOKEN,
  H_VERSION,
  PROTOCOL_VERSION,
  isValidName,
  secretMatches,
  type RefusalCode,
} from '../../tunnel/protocol.js';
import { wsMux } from '../../tunnel/link.js';
import { acceptWebSocket, type WsLink } from '../../tunnel/ws-link.js';
import { secretId, type TunnelSettings } from './options.js';
import type { SiteTunnels } from './registry.js';
import { TunnelSession, type ByteCounter } from './session.js';
import { TcpPort, type PortClaim } from './tcp.js';
import { tunnelCluster, type ClusterName } from './cluster.js';
import { trackSession } from './stats.js';
import { VisitorAuth } from './visitor-auth.js';

/** The longest WebSocket frame a client may send on a link (its own are at most 256 KiB). */
const MAX_LINK_FRAME = 64 * 1024 * 1024;

function refuse(status: number, code: RefusalCode, detail: string): HttpError {
  return new HttpError(status, detail, {
    headers: { [H_ERROR]: code, [H_DETAIL]: detail, [H_VERSION]: PROTOCOL_VERSION },
    detail,
  });
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

/** What the client asks for besides a name: a TCP port, or basic auth for its visitors. */
interface Wish {
  proto: 'http' | 'tcp';
  auth?: VisitorAuth;
  /** tcp: this port or nothing. */
  wanted?: number;
  /** tcp: this port if free (the one held before a reconnect). */
  prefer?: number;
}

function header(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** Reads and checks the client's wishes; throws the refusal it deserves. */
function readWish(ctx: RequestContext, settings: TunnelSettings, host: string): Wish {
  const proto = header(ctx, H_PROTO) ?? 'http';
  if (proto !== 'http' && proto !== 'tcp') throw refuse(400, 'bad-request', `unknown tunnel kind '${proto}'`);
  if (proto === 'http') {
    const auth = VisitorAuth.fromHeader(header(ctx, H_BASIC_AUTH), host);
    if (auth instanceof Error) throw refuse(400, 'bad-request', auth.message);
    return { proto, auth };
  }
  const range = settings.tcpPorts;
  if (!range) {
    throw refuse(
      403,
      'no-tcp',
      `TCP tunnels are not enabled on ${ctx.site.label} (its tunnel directive needs tcp_ports)`,
    );
  }
  const port = (name: string) => {
    const v = header(ctx, name);
    return v === undefined ? undefined : Number(v);
  };
  const wanted = port(H_REMOTE_PORT);
  if (wanted !== undefined && !(Number.isInteger(wanted) && wanted >= range.from && wanted <= range.to)) {
    throw refuse(
      400,
      'bad-request',
      `port ${header(ctx, H_REMOTE_PORT)} is not one of this site's TCP ports (${range.from}-${range.to})`,
    );
  }
  return { proto, wanted, prefer: port(H_PREFER_PORT) };
}

/** Binds the public TCP port the client gets, or throws the refusal (after giving the name back). */
async function bindTcp(
  settings: TunnelSettings,
  bindHost: string | undefined,
  wish: Wish,
  name: ClusterName,
): Promise<TcpPort | undefined> {
  if (wish.proto !== 'tcp' || !settings.tcpPorts) return undefined;
  const cluster = tunnelCluster();
  const claim: PortClaim | undefined = cluster && {
    claim: (port) => cluster.claimPort(name, port),
    release: (port) => cluster.releasePort(name, port),
  };
  const port = await TcpPort.bind(settings.tcpPorts, bindHost, wish.wanted, wish.prefer, claim);
  if (port === 'taken') throw refuse(409, 'port-taken', `port ${wish.wanted} is in use`);
  if (port === 'unavailable') {
    throw refuse(503, 'unavailable', 'the tunnel registry is unreachable for now; retry shortly');
  }
  if (port === 'full') {
    const { from, to } = settings.tcpPorts;
    throw refuse(503, 'no-free-port', `every TCP port of this site (${from}-${to}) is in use`);
  }
  return port;
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
  const version = header(ctx, H_VERSION);
  if (version !== PROTOCOL_VERSION) {
    log.warn({ host: headers.host, remote, version }, 'tunnel refused: other protocol version');
    throw refuse(
      400,
      'bad-version',
      `this server speaks tunnel protocol ${PROTOCOL_VERSION} and the client ${version ? `speaks ${version}` : 'sent none'}: ` +
        'run the same nodecaddy version on both ends',
    );
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
  if (token.length < 16) throw refuse(400, 'bad-request', 'a client token is required');
  const wish = readWish(ctx, settings, host);
  const sid = secretId(settings.secrets[index]);
  if (header(ctx, H_LINK) === 'join') {
    if (wish.proto === 'tcp') throw refuse(400, 'bad-request', 'a TCP tunnel has one link');
    return acceptJoin(ctx, site, settings, { host, token, secretId: sid, remote, auth: wish.auth });
  }
  if (site.countFor(sid) >= settings.maxSessions) {
    log.warn({ host, remote }, 'tunnel refused: too many sessions for this secret');
    throw refuse(429, 'too-many-sessions', `this secret already holds ${settings.maxSessions} tunnels`);
  }
  const claimed = await site.claim(host, token, sid);
  if (claimed === 'taken') {
    log.warn({ host, remote }, 'tunnel refused: name held by another client');
    throw refuse(409, 'name-taken', `${host} is in use by another tunnel client`);
  }
  if (claimed === 'too-many-sessions') {
    log.warn({ host, remote }, 'tunnel refused: too many sessions for this secret across the cluster');
    throw refuse(
      429,
      'too-many-sessions',
      `this secret already holds ${settings.maxSessions} tunnels across the cluster`,
    );
  }
  if (claimed === 'unavailable') {
    log.warn({ host, remote }, 'tunnel refused: the tunnel registry (redis) is unreachable');
    throw refuse(503, 'unavailable', 'the tunnel registry is unreachable for now; retry shortly');
  }
  if (ctx.isTls) reportClaim(host, log);
  // Everything from here on gives the name (and the port) back when it fails.
  let tcp: TcpPort | undefined;
  const giveBack = async () => {
    await tcp?.close();
    await site.unclaim(host, token);
  };
  let socket;
  try {
    tcp = await bindTcp(settings, ctx.site.config.bindHost, wish, {
      siteKey: site.key,
      host,
      token,
      secretId: sid,
    });
    // Set before the claim, which ends the response for the log: the access log must say 101, not 200.
    ctx.res.statusCode = 101;
    socket = ctx.upgrade!.claim();
  } catch (err) {
    if (ctx.res.statusCode === 101) ctx.res.statusCode = 200;
    await giveBack();
    if (err instanceof HttpError) log.warn({ host, remote }, `tunnel refused: ${err.message}`);
    throw err;
  }
  const link = openLink(ctx, socket, settings.log, host, remote);
  if (!link) {
    await giveBack();
    return;
  }
  const { ws, mux } = link;
  const session = new TunnelSession({
    host,
    token,
    secretId: sid,
    remote,
    ws,
    mux,
    settings: () => site.settings,
    transport: byteCounter(socket),
    auth: wish.auth,
    tcp,
  });
  site.attach(host, session);
  session.goOnline();
  trackSession(session);
  log.info(
    { host, remote, proto: session.proto, ...(tcp && { port: tcp.port }), auth: Boolean(wish.auth) },
    'tunnel connected',
  );
  session.onClose((s, reason) => {
    const t = s.traffic();
    log.info(
      {
        host,
        remote,
        reason,
        seconds: Math.round((Date.now() - t.since.getTime()) / 1000),
        requests: t.requests,
        connections: t.connections,
        bytesIn: t.bytesIn,
        bytesOut: t.bytesOut,
      },
      'tunnel disconnected',
    );
  });
}

/** The WebSocket of an accepted handshake and the tunnel's mux over it; undefined if the upgrade failed. */
function openLink(
  ctx: RequestContext,
  socket: Duplex,
  log: Logger,
  host: string,
  remote: string,
): { ws: WsLink; mux: Mux } | undefined {
  // A malformed handshake is answered (400, 405, 426) and the connection ends.
  const ws = acceptWebSocket(ctx.req, socket, ctx.upgrade!.head, {
    maxPayload: MAX_LINK_FRAME,
    onProtocolError: (code, why) =>
      log.warn({ host, remote, code, err: why }, 'tunnel client broke the WebSocket protocol'),
  });
  if (!ws) return undefined;
  // A client that breaks the tunnel's protocol is cut (close code 1002).
  const mux = wsMux(ws, socket, (why) =>
    log.warn({ host, remote, err: why }, 'tunnel client broke the protocol'),
  );
  return { ws, mux };
}

/**
 * One more link of a client whose name a sibling process holds (H_LINK join): this process then serves the
 * name's visitors over it instead of relaying them to the sibling, for as long as the sibling holds the name
 * for this same client (token). Not a session of its own: max_sessions does not count it.
 */
async function acceptJoin(
  ctx: RequestContext,
  site: SiteTunnels,
  settings: TunnelSettings,
  who: { host: string; token: string; secretId: string; remote: string; auth?: VisitorAuth },
): Promise<void> {
  const { host, remote } = who;
  const joined = await site.join(host, who.token);
  if ('refused' in joined) {
    settings.log.debug({ host, remote, why: joined.refused }, 'tunnel link refused');
    if (joined.refused === 'taken')
      throw refuse(409, 'name-taken', `${host} is in use by another tunnel client`);
    if (joined.refused === 'already-linked') {
      throw refuse(
        409,
        'already-linked',
        `this server process already has a link of this client for ${host}`,
      );
    }
    throw refuse(409, 'not-held', `no process of this server holds ${host} for this client`);
  }
  const watch = joined.ok;
  let socket;
  try {
    ctx.res.statusCode = 101;
    socket = ctx.upgrade!.claim();
  } catch (err) {
    ctx.res.statusCode = 200;
    site.unjoin(host, watch);
    throw err;
  }
  const link = openLink(ctx, socket, settings.log, host, remote);
  if (!link) {
    site.unjoin(host, watch);
    return;
  }
  const session = new TunnelSession({
    ...who,
    ws: link.ws,
    mux: link.mux,
    settings: () => site.settings,
    transport: byteCounter(socket),
    joined: true,
  });
  // No goOnline: a join says nothing to the client, its traffic goes to the holder.
  site.attachJoined(host, session, watch);
  trackSession(session);
  settings.log.debug({ host, remote }, 'tunnel link joined');
}

/**
 * An authenticated client holds `host` now: automatic HTTPS may obtain its certificate at once, so the first
 * visitor usually finds it ready. Never fails or delays the claim.
 */
function reportClaim(host: string, log: Logger): void {
  try {
    certificateRequests()?.claimed(host);
  } catch (err) {
    log.warn({ host, err }, 'tunnel claim: asking for a certificate failed');
  }
}

/** The upgraded socket's byte counts (a plain or TLS socket has them; anything else counts nothing). */
function byteCounter(socket: Duplex): ByteCounter {
  const counted = socket as Partial<ByteCounter>;
  return {
    get bytesRead() {
      return counted.bytesRead ?? 0;
    },
    get bytesWritten() {
      return counted.bytesWritten ?? 0;
    },
  };
}
