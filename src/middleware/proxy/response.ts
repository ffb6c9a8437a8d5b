// Sending the upstream's answer to the client: headers merged as Caddy v1 does, the body streamed through
// res.write/res.end (so gzip and log wrappers see it) with backpressure, and WebSocket switches spliced.
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestContext } from '../../core/context.js';
import { connectionTokens, isHopByHop } from '../../core/forwarded.js';
import { applyHeaderRules, objectHeaderBag, type HeaderRule } from '../../core/headerrules.js';
import type { UpgradeRequest } from '../../core/upgrade.js';
import type { UpstreamResponse } from './forward.js';

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
 * Streams the upstream body to the client and resolves when the client response is complete. An upstream
 * that dies mid-body destroys the client connection (never a clean end) and rejects; a client that goes
 * away destroys the upstream request.
 */
export function pipeResponse(
  res: ServerResponse,
  upstream: IncomingMessage,
  upstreamReq: ClientRequest,
  upstreamName: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve();
    };
    const onUpstreamFailure = (err?: Error) => {
      if (done || upstream.complete) return;
      res.destroy();
      upstreamReq.destroy();
      finish(new Error(`upstream ${upstreamName} closed the response early: ${err?.message ?? 'aborted'}`));
    };
    upstream.on('aborted', () => onUpstreamFailure());
    upstream.on('error', onUpstreamFailure);
    res.once('close', () => {
      if (!res.writableFinished) {
        // The client went away: stop reading from the upstream and drop the connection.
        upstreamReq.destroy();
        upstream.destroy();
      }
      finish();
    });
    res.once('finish', () => finish());
    upstream.on('end', () => {
      if (upstream.trailers && Object.keys(upstream.trailers).length > 0 && res.hasHeader('trailer')) {
        res.addTrailers(upstream.trailers);
      }
      res.end();
    });
    // Server-sent events are useless late: send the head now rather than with the first event.
    const type = upstream.headers['content-type'];
    if (type !== undefined && type.startsWith('text/event-stream')) res.flushHeaders();
    upstream.pipe(res, { end: false });
  });
}

/**
 * Completes a WebSocket (or other) upgrade: the upstream's 101 head goes to the client as received, then
 * bytes flow both ways until either side closes. Resolves when both sockets are closed.
 */
export function spliceUpgrade(
  client: UpgradeRequest,
  upstream: IncomingMessage,
  upstreamSocket: Socket,
  upstreamHead: Buffer,
): Promise<void> {
  // Go's Hijack: from here on the connection is ours; the response object is detached.
  const socket = client.claim();
  let head = `HTTP/1.1 101 ${upstream.statusMessage || 'Switching Protocols'}\r\n`;
  const raw = upstream.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  socket.write(`${head}\r\n`);
  if (upstreamHead.length > 0) socket.write(upstreamHead);
  if (client.head.length > 0) upstreamSocket.write(client.head);
  upstreamSocket.setNoDelay(true);
  upstreamSocket.setTimeout(0);
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
    upstreamSocket.once('close', closed);
    socket.on('error', end);
    upstreamSocket.on('error', end);
    socket.once('close', end);
    upstreamSocket.once('close', end);
    upstreamSocket.pipe(socket);
    socket.pipe(upstreamSocket);
  });
}
