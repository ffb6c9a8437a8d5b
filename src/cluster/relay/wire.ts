// What crosses the relay between two instances: one HTTP/2 stream per visitor request, carrying exactly the
// tunnel's Forwarded (method, path, authority, headers, Upgrade protocol) plus the site key, and the holder's
// answer: an Exchange, an accepted upgrade (RFC 8441 extended CONNECT answered 200), or a TunnelError in the
// x-nodecaddy-tunnel-error/detail headers (the convention of the unix-socket relay in tunnel/peer.ts).
import type { OutgoingHttpHeaders } from 'node:http';
import type { IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import { withoutHopByHop } from '../../core/forwarded.js';
import { H2_FORBIDDEN } from '../../core/response.js';
import { TunnelError, type Forwarded } from '../../middleware/tunnel/relay.js';
import { H_DETAIL, H_ERROR } from '../../tunnel/protocol.js';

/** Every header of the relay's own starts with this; a visitor's field of that name never crosses. */
export const RELAY_PREFIX = 'x-nodecaddy-relay-';
/** The site key of the tunnel (URI-encoded: a site's path may hold any character). */
export const H_SITE = 'x-nodecaddy-relay-site';
/** The visitor's method when the stream is an extended CONNECT (an Upgrade request). */
export const H_METHOD = 'x-nodecaddy-relay-method';
/** On a 200 to an extended CONNECT: the target switched protocols (HTTP/2 has no 101). */
export const H_UPGRADED = 'x-nodecaddy-relay-upgraded';
/** A control stream instead of a relayed request: `hello` (h2c nonces) or `evict`. */
export const H_OP = 'x-nodecaddy-relay-op';
/** The sender's proof of the cluster secret for this session (auth.ts). */
export const H_PROOF = 'x-nodecaddy-relay-proof';
/** The nonces of an h2c session's hello, base64url. */
export const H_NONCE = 'x-nodecaddy-relay-nonce';
/** The tunnel client's token in an evict request. */
export const H_EVICT_TOKEN = 'x-nodecaddy-relay-token';
/** A raw TCP connection to a tunnel's public port: an extended CONNECT with this `:protocol`. */
export const TCP_PROTOCOL = 'nodecaddy-tcp';
/** The public port a relayed TCP connection arrived on. */
export const H_PORT = 'x-nodecaddy-relay-port';
/** The visitor's address of a relayed TCP connection. */
export const H_REMOTE = 'x-nodecaddy-relay-remote';

/** Per stream 16 MiB, per session 64 MiB: with HTTP/2's 64 KiB default, 16 KiB answers ran at 0.7× (scale.md §8.4). */
export const STREAM_WINDOW = 16 * 1024 * 1024;
export const SESSION_WINDOW = 64 * 1024 * 1024;

/** The error code of a holder that does not hold the tunnel (any more): the caller looks the route up again. */
export const NOT_HERE = 'not-here';

/**
 * Fields HTTP/2 forbids (RFC 9113 §8.2.2; Node throws on them, so they never reach a stream's head), `te`
 * (only `trailers` would be allowed, and nothing here sends trailers) and `host` (the authority carries it).
 */
const CONNECTION_SPECIFIC = new Set([...H2_FORBIDDEN, 'te', 'host']);

/** A copy of `headers` fit for an HTTP/2 head: no pseudo, connection-specific or relay fields. */
function plainFields(headers: OutgoingHttpHeaders, into: OutgoingHttpHeaders, keepHost: boolean): void {
  for (const key of Object.keys(headers)) {
    const name = key.toLowerCase();
    if (name.charCodeAt(0) === 0x3a /* : */ || name.startsWith(RELAY_PREFIX)) continue;
    if (CONNECTION_SPECIFIC.has(name) && !(keepHost && name === 'host')) continue;
    const value = headers[key];
    if (value !== undefined) into[name] = value;
  }
}

/** The HTTP/2 request head of a relayed request (an extended CONNECT for an Upgrade). */
export function requestHead(
  fwd: Forwarded,
  siteKey: string,
  tls: boolean,
  proof: string,
): OutgoingHttpHeaders {
  const head = Object.create(null) as OutgoingHttpHeaders;
  head[':method'] = fwd.protocol ? 'CONNECT' : fwd.method;
  head[':path'] = fwd.path || '/';
  head[':authority'] = fwd.authority;
  head[':scheme'] = tls ? 'https' : 'http';
  if (fwd.protocol) {
    head[':protocol'] = fwd.protocol;
    head[H_METHOD] = fwd.method;
  }
  // Host is kept as an ordinary field: it is part of the request the holder passes on (peer.ts does too).
  plainFields(fwd.headers, head, true);
  head[H_SITE] = encodeURIComponent(siteKey);
  head[H_PROOF] = proof;
  return head;
}

/** The relayed request as the relaying instance prepared it, from its HTTP/2 head; plus its site key. */
export function forwardedOf(head: IncomingHttpHeaders): { fwd: Forwarded; siteKey: string } {
  const protocol = head[':protocol'];
  const method = head[':method'] ?? 'GET';
  const headers = withoutHopByHop(head);
  for (const name of Object.keys(headers)) if (name.startsWith(RELAY_PREFIX)) delete headers[name];
  let siteKey = '';
  try {
    siteKey = decodeURIComponent(String(head[H_SITE] ?? ''));
  } catch {
    // A broken encoding names no site.
  }
  const fwd: Forwarded = {
    method: protocol ? String(head[H_METHOD] ?? 'GET') : method,
    path: head[':path'] ?? '/',
    authority: head[':authority'] ?? String(head.host ?? ''),
    headers,
    protocol,
  };
  return { fwd, siteKey };
}

/** The HTTP/2 response head for an answer of the target (or its accepted upgrade). */
export function responseHead(
  status: number,
  headers: OutgoingHttpHeaders,
  proof: string,
  upgraded: boolean,
): OutgoingHttpHeaders {
  const head = Object.create(null) as OutgoingHttpHeaders;
  head[':status'] = upgraded ? 200 : status;
  plainFields(headers, head, false);
  if (upgraded) head[H_UPGRADED] = '1';
  head[H_PROOF] = proof;
  return head;
}

/** The response head that tells the relaying instance why its request failed. */
export function errorHead(err: unknown, proof: string | undefined): OutgoingHttpHeaders {
  const e = err instanceof TunnelError ? err : new TunnelError(502, 'no-tunnel', 'tunnel failed');
  const head = Object.create(null) as OutgoingHttpHeaders;
  head[':status'] = e.status;
  for (const [name, value] of Object.entries(e.headers)) head[name.toLowerCase()] = value;
  head[H_ERROR] = e.code;
  head[H_DETAIL] = e.message.replace(/[^\t\x20-\x7e]/g, '?');
  if (proof) head[H_PROOF] = proof;
  return head;
}

/** The holder's error in a response head as a TunnelError, or undefined for an answer of the target. */
export function errorOf(head: IncomingHttpHeaders & IncomingHttpStatusHeader): TunnelError | undefined {
  const code = head[H_ERROR];
  if (typeof code !== 'string') return undefined;
  const auth = head['www-authenticate'];
  const headers: Record<string, string> = typeof auth === 'string' ? { 'www-authenticate': auth } : {};
  return new TunnelError(head[':status'] ?? 502, code, String(head[H_DETAIL] ?? ''), headers);
}

/** The target's response fields from a response head: no pseudo or relay fields. */
export function answerFields(head: IncomingHttpHeaders): OutgoingHttpHeaders {
  const headers = withoutHopByHop(head);
  for (const name of Object.keys(headers)) if (name.startsWith(RELAY_PREFIX)) delete headers[name];
  return headers;
}
