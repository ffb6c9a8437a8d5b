// The tunnel wire protocol, shared by the public server (src/middleware/tunnel) and the client
// (`nodecaddy tunnel`). One WebSocket per client, binary messages carrying the tunnel's own frames
// (src/tunnel/frames.ts, mux.ts): the server opens one stream per visitor request or TCP connection, the
// client answers it.
//
// Handshake: the client sends `GET /_nodecaddy/tunnel` with `Upgrade: websocket` to the public host it
// wants (`alice.tunnel.example.com`), with the headers below. The server answers 101 or an HTTP error whose
// `x-nodecaddy-tunnel-error` header says why (see RefusalCode).
import { createHash, timingSafeEqual } from 'node:crypto';

export const TUNNEL_PATH = '/_nodecaddy/tunnel';
/**
 * Version 2 added TCP tunnels, per-tunnel basic auth and the control messages; version 3 replaced HTTP/2
 * inside the WebSocket with the tunnel's own frames. A client and a server of different versions refuse each
 * other at the handshake ('bad-version', saying both versions).
 */
export const PROTOCOL_VERSION = '3';

/** Handshake request headers. */
export const H_VERSION = 'x-nodecaddy-tunnel-version';
export const H_SECRET = 'x-nodecaddy-tunnel-secret';
/** A random token the client draws once per process: a reconnect carrying it replaces its own stale session. */
export const H_TOKEN = 'x-nodecaddy-tunnel-token';
/** What the tunnel carries: `http` (the default) or `tcp`. */
export const H_PROTO = 'x-nodecaddy-tunnel-proto';
/** tcp: the public port the client insists on (`-remote-port`); refused when it is not free. */
export const H_REMOTE_PORT = 'x-nodecaddy-tunnel-remote-port';
/** tcp: the port the client had before a reconnect; another free one when it is taken meanwhile. */
export const H_PREFER_PORT = 'x-nodecaddy-tunnel-prefer-port';
/** http: base64 of `user:pass`; the server asks every visitor for them before anything reaches the client. */
export const H_BASIC_AUTH = 'x-nodecaddy-tunnel-basic-auth';
/**
 * `join`: one more link for a name this client (same token) already holds in another process of the server.
 * A server with several worker processes says how many links it wants (`links` in `online`); each worker that
 * has a link of its own serves the name's visitors over it instead of relaying them to the holding worker.
 */
export const H_LINK = 'x-nodecaddy-tunnel-link';
/** On a refusal (handshake) or a failed stream (client → server): a RefusalCode / StreamErrorCode. */
export const H_ERROR = 'x-nodecaddy-tunnel-error';
/** One human line explaining H_ERROR. */
export const H_DETAIL = 'x-nodecaddy-tunnel-detail';
/** Every header of the tunnel's own starts so; the server removes them from what visitors send. */
export const HEADER_PREFIX = 'x-nodecaddy-tunnel-';

/** Per-tunnel counters kept by the server (bytes as carried on the tunnel's connection). */
export interface TrafficCounters {
  /** HTTP requests and WebSocket upgrades. */
  requests: number;
  /** TCP connections. */
  connections: number;
  /** Bytes from visitors towards the client. */
  bytesIn: number;
  /** Bytes from the client back to visitors. */
  bytesOut: number;
  /** Requests, WebSockets and TCP connections in progress. */
  openStreams: number;
}

/** What the server tells the client in CONTROL frames. The first message is always `online`. */
export type ControlMessage =
  /** `links`: how many links (one per server process) the client should keep; absent means one. */
  | { type: 'online'; proto: 'http' | 'tcp'; host: string; port?: number; links?: number }
  | ({ type: 'traffic'; since: string } & TrafficCounters);

export type RefusalCode =
  | 'wrong-secret'
  | 'bad-name'
  | 'name-taken'
  | 'too-many-sessions'
  | 'bad-version'
  | 'bad-request'
  | 'no-tcp'
  | 'port-taken'
  | 'no-free-port'
  | 'unavailable'
  /** join: this server process already has a link of this client for the name (try again: another may not). */
  | 'already-linked'
  /** join: no process of this server holds the name for this client. */
  | 'not-held';

/** Refusals after which retrying cannot help: the client stops. The others are retried with backoff. */
export const FATAL_REFUSALS: ReadonlySet<string> = new Set([
  'wrong-secret',
  'bad-name',
  'bad-version',
  'bad-request',
  'no-tcp',
]);

/** Stream-level errors the tunnel client reports instead of a response from the target. */
export type StreamErrorCode = 'target-down' | 'no-tunnel' | 'tunnel-busy';

/** A tunnel name is one DNS label: lower-case letters, digits and inner hyphens, at most 63 characters. */
export function isValidName(name: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name);
}

/** Constant-time comparison of a presented secret with the configured ones (hashes equalise the lengths). */
export function secretMatches(presented: string, secrets: readonly string[]): number {
  const given = createHash('sha256').update(presented).digest();
  let found = -1;
  secrets.forEach((secret, i) => {
    const want = createHash('sha256').update(secret).digest();
    if (timingSafeEqual(given, want) && found < 0) found = i;
  });
  return found;
}
