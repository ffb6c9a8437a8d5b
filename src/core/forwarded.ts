// Hop-by-hop headers and X-Forwarded-*: what every forwarding directive (proxy, tunnel) does the same way.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific fields plus the ones Go's ReverseProxy (and Caddy v1) also drop. */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'alt-svc',
  'alternate-protocol',
];

const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);

/** Names listed in a Connection header (RFC 9110 §7.6.1), lower-cased. */
export function connectionTokens(value: string | string[] | number | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : String(value);
  const out: string[] = [];
  for (const part of text.split(',')) {
    const token = part.trim().toLowerCase();
    if (token) out.push(token);
  }
  return out;
}

/**
 * A copy of `headers` without hop-by-hop fields, without those named in its Connection header and without
 * HTTP/2 pseudo-headers (`:authority` & co. of a request that came over HTTP/2). Keys stay lower-case as Node
 * gives them. The input is not changed.
 */
export function withoutHopByHop(headers: IncomingHttpHeaders | OutgoingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  // No prototype: a field named `__proto__` (HTTP/2 and parsed upstream heads keep one) is copied as a field.
  const out = Object.create(null) as OutgoingHttpHeaders;
  for (const key of Object.keys(headers)) {
    const lower = key.toLowerCase();
    if (
      HOP_BY_HOP.has(lower) ||
      key.charCodeAt(0) === 0x3a /* : */ ||
      (named.length > 0 && named.includes(lower))
    )
      continue;
    const value = headers[key];
    if (value !== undefined) out[lower] = value;
  }
  return out;
}

/** Is this header hop-by-hop (by the fixed list)? */
export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name.toLowerCase());
}

/** Strips an IPv4-mapped IPv6 prefix so logs and X-Forwarded-For show `1.2.3.4`, not `::ffff:1.2.3.4`. */
export function clientIp(remoteAddress: string | undefined): string {
  if (!remoteAddress) return '';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.')
    ? remoteAddress.slice(7)
    : remoteAddress;
}

/** X-Forwarded-For with the client appended to any earlier hops (never replaced), joined by `, `. */
export function appendForwardedFor(previous: string | string[] | number | undefined, ip: string): string {
  if (previous === undefined || previous === '') return ip;
  const prior = Array.isArray(previous) ? previous.join(', ') : String(previous);
  return ip ? `${prior}, ${ip}` : prior;
}

/**
 * Sets the forwarding headers on outgoing request headers (already stripped of hop-by-hop fields):
 * X-Forwarded-For appended, X-Forwarded-Proto and X-Forwarded-Host set unless an earlier hop set them.
 */
export function setForwardedHeaders(
  out: OutgoingHttpHeaders,
  incoming: IncomingHttpHeaders,
  info: { ip: string; tls: boolean },
): void {
  out['x-forwarded-for'] = appendForwardedFor(incoming['x-forwarded-for'], info.ip);
  if (incoming['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = info.tls ? 'https' : 'http';
  if (incoming['x-forwarded-host'] === undefined && incoming.host !== undefined) {
    out['x-forwarded-host'] = incoming.host;
  }
}
