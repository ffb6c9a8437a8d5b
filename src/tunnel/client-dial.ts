// The tunnel client's WebSocket to the public server (its main link and its joins).
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { TUNNEL_PATH } from './protocol.js';
import { isLoopback } from './transport.js';

/** What dialling needs of the client's options. */
export interface DialTarget {
  /** The public server, `https://tunnel.example.com` (user:pass@ for a basicauth-guarded site). */
  server: URL;
  name: string;
  /** Connect to this host:port instead of resolving the public host. */
  dial?: { host: string; port: number };
  handshakeTimeoutMs: number;
}

export interface Dialled {
  ws: WebSocket;
  /** How far the connection got, for telling a failed TLS handshake from an unreachable server. */
  handshake: { tcp: boolean; tls: boolean };
  serverName: string;
  publicHost: string;
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/**
 * Opens a WebSocket to the server for the tunnel `o.name` with the handshake `headers`. `sniOnName`: the TLS
 * handshake names the tunnel instead of the apex.
 */
export function dialServer(o: DialTarget, sniOnName: boolean, headers: Record<string, string>): Dialled {
  const s = o.server;
  const secure = s.protocol === 'https:' || s.protocol === 'wss:';
  const publicHost = `${o.name}.${s.hostname}`;
  const url = new URL(`${secure ? 'wss' : 'ws'}://${publicHost}${s.port ? `:${s.port}` : ''}${TUNNEL_PATH}`);
  url.username = s.username;
  url.password = s.password;
  const dial = o.dial;
  // Over TLS the handshake names the apex (the -server host), while the WebSocket's Host is the tunnel's own
  // name: the apex is an ordinary site with a certificate, and a new tunnel name has none until this client
  // has claimed it (tls.md §6.2). A server with only a wildcard certificate has none for the apex: after a
  // failed handshake the next attempt names the tunnel, and whichever worked is kept.
  const serverName = sniOnName ? publicHost : s.hostname;
  const handshake = { tcp: false, tls: false };
  const connectTls = (opts: tls.ConnectionOptions) => {
    const socket = tls.connect({
      ...opts,
      // The request's path, which net would take for a Unix socket's.
      path: undefined,
      host: dial?.host ?? opts.host,
      port: dial?.port ?? opts.port,
      servername: serverName,
    });
    socket.once('connect', () => (handshake.tcp = true));
    socket.once('secureConnect', () => (handshake.tls = true));
    return socket;
  };
  const createConnection = secure
    ? connectTls
    : dial && (() => net.connect({ host: dial.host, port: dial.port }));
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    // Masking stops a browser script from steering what a proxy in the path reads (RFC 6455 §10.3); inside
    // TLS, or to this machine, no proxy reads the frames, so the mask is zero and ws sends the data as it
    // is: no copy, no allocation, no masking pass per message.
    ...((secure || isLoopback(dial?.host ?? s.hostname)) && { generateMask: zeroMask }),
    handshakeTimeout: o.handshakeTimeoutMs,
    maxPayload: 64 * 1024 * 1024,
    headers,
    ...(createConnection && {
      createConnection: createConnection as unknown as typeof net.createConnection,
    }),
  });
  return { ws, handshake, serverName, publicHost };
}
