// HTTP/1.1 ⇄ HTTP/2 header translation for the tunnel. HTTP/2 forbids connection-specific fields (Node
// throws ERR_HTTP2_INVALID_CONNECTION_HEADERS), so hop-by-hop headers go before a stream is opened.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { IncomingHttpHeaders as H2Headers, OutgoingHttpHeaders as H2Out } from 'node:http2';
import { withoutHopByHop } from '../core/forwarded.js';
import { H_DETAIL, H_ERROR, HEADER_PREFIX } from './protocol.js';

/** Headers that never cross the tunnel on a request (besides hop-by-hop ones). */
const REQUEST_DROP = ['host', 'expect', 'http2-settings'];

/** The HTTP/2 request headers for a forwarded request; `headers` are already without hop-by-hop fields. */
export function h2RequestHeaders(
  method: string,
  path: string,
  authority: string,
  headers: OutgoingHttpHeaders,
  protocol?: string,
): H2Out {
  const out = Object.create(null) as H2Out; // a `__proto__` field is a field, not a prototype
  for (const key of Object.keys(headers)) {
    // The tunnel's own headers (the control stream's mark) come from the server alone, never from a visitor.
    if (REQUEST_DROP.includes(key) || key.startsWith(':') || key.startsWith(HEADER_PREFIX)) continue;
    out[key] = headers[key];
  }
  if (protocol) {
    // RFC 8441 extended CONNECT: the method is CONNECT, `:protocol` names what the Upgrade header asked for.
    out[':method'] = 'CONNECT';
    out[':protocol'] = protocol;
  } else out[':method'] = method;
  out[':path'] = path;
  out[':scheme'] = 'http';
  out[':authority'] = authority;
  return out;
}

/** The HTTP/2 response headers for an HTTP/1.1 response from the target. */
export function h2ResponseHeaders(status: number, headers: IncomingHttpHeaders): H2Out {
  const out = withoutHopByHop(headers);
  // The tunnel's own error signal must come from the client, never from whatever the target answers.
  delete out[H_ERROR];
  delete out[H_DETAIL];
  out[':status'] = status;
  return out;
}

/** The regular (non-pseudo) headers of an HTTP/2 header block, as HTTP/1.1 headers. */
export function plainHeaders(headers: H2Headers): OutgoingHttpHeaders {
  const out = Object.create(null) as OutgoingHttpHeaders; // as in h2RequestHeaders
  for (const key of Object.keys(headers)) {
    if (key.startsWith(':')) continue;
    const value = headers[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** `HTTP/1.1 101 Switching Protocols` plus headers, for an upgrade answered across the tunnel. */
export function switchingProtocolsHead(protocol: string, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n`;
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key === 'connection' || key === 'upgrade') continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${key}: ${String(v)}\r\n`;
  }
  return `${head}\r\n`;
}
