// Sending the upstream's answer to the client: headers merged as Caddy v1 does (the body is streamed by the
// client, h1/client.ts), and WebSocket switches spliced.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../core/context.js';
import { connectionTokens, isHopByHop } from '../../core/forwarded.js';
import { applyHeaderRules, objectHeaderBag, type HeaderRule } from '../../core/headerrules.js';
import type { UpgradeRequest } from '../../core/upgrade.js';
import type { UpstreamResponse } from './forward.js';
import type { UpgradeHead } from '../../core/h1/parser.js';
import type { UpstreamConnection } from '../../core/h1/pool.js';

/** Headers an earlier directive may have set that the upstream does not override (Caddy's list). */
const KEEP_EXISTING = new Set([
  'content-type',
  'content-disposition',
  'accept-ranges',
  'set-cookie',
  'cache-control',
  'expires',
]);

/** Copies status and headers (hop-by-hop stripped, header_downstream applied) onto the client response. */
export function copyResponseHead(
  ctx: RequestContext,
  upstream: Pick<UpstreamResponse, 'statusCode' | 'statusMessage' | 'headers'>,
  downstreamRules: readonly HeaderRule[],
): void {
  const res = ctx.res;
  let headers: OutgoingHttpHeaders = upstream.headers;
  if (downstreamRules.length > 0) {
    headers = { ...upstream.headers };
    applyHeaderRules(downstreamRules, ctx, objectHeaderBag(headers), { skipEmpty: true });
  }
  const named =
    upstream.headers.connection === undefined ? [] : connectionTokens(upstream.headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name) || (named.length > 0 && named.includes(name))) continue;
    const existing = res.getHeader(name);
    if (existing === undefined) res.setHeader(name, value);
    else if (name === 'server') res.setHeader(name, [...toList(existing), ...toList(value)]);
    else if (!KEEP_EXISTING.has(name)) res.setHeader(name, value);
  }
  // Announced trailers are passed on (Trailer is hop-by-hop, so it is announced again here).
  if (upstream.headers.trailer !== undefined) res.setHeader('trailer', upstream.headers.trailer);
  res.statusCode = upstream.statusCode;
  if (upstream.statusMessage) res.statusMessage = upstream.statusMessage;
}

function toList(v: string | number | string[]): string[] {
  return Array.isArray(v) ? v : [String(v)];
}

/**
 * Completes a WebSocket (or other) upgrade: the upstream's 101 head goes to the client as received, then
 * bytes flow both ways until either side closes. Resolves when both sockets are closed.
 */
export function spliceUpgrade(
  client: UpgradeRequest,
  upstream: UpgradeHead,
  conn: UpstreamConnection,
  rest: Buffer,
): Promise<void> {
  // Go's Hijack: from here on the connection is ours; the response object is detached.
  const socket = client.claim();
  const upstreamSocket = conn.socket;
  let head = `HTTP/1.1 101 ${upstream.statusMessage || 'Switching Protocols'}\r\n`;
  const raw = upstream.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  socket.write(`${head}\r\n`);
  if (rest.length > 0) socket.write(rest);
  return new Promise((resolve) => {
    let open = 2;
    const closed = () => {
      if (--open === 0) resolve();
    };
    // Either side closing or failing ends both: nothing may be left half-open and forgotten.
    const end = () => {
      socket.destroy();
      upstreamSocket.destroy();
    };
    socket.once('close', closed);
    socket.on('error', end);
    socket.once('close', end);
    if (upstreamSocket.destroyed) {
      // The upstream went away between its 101 and now.
      closed();
      end();
      return;
    }
    // Upstream bytes arrive in the pool's shared read buffer (h1/pool.ts): each is copied before it is queued.
    conn.user = {
      onData: (chunk) => {
        if (!socket.write(Buffer.from(chunk))) {
          upstreamSocket.pause();
          socket.once('drain', () => upstreamSocket.resume());
        }
      },
      onEnd: () => socket.end(),
      onError: end,
      onClose: () => {
        closed();
        end();
      },
      onDrain: () => {},
    };
    if (client.head.length > 0) upstreamSocket.write(client.head);
    upstreamSocket.setNoDelay(true);
    upstreamSocket.setTimeout(0);
    socket.pipe(upstreamSocket);
    upstreamSocket.resume();
  });
}
