// Relaying one visitor request to whatever holds its tunnel (a session in this process, or the process that
// holds it), and writing the answer back: through res.writeHead/write/end so outer directives (log, gzip,
// header) see it, or by taking the socket over when an Upgrade was accepted.
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpResponse } from '../../core/response.js';
import type { Duplex, Readable } from 'node:stream';
import type { UpgradeRequest } from '../../core/upgrade.js';
import { switchingProtocolsHead } from '../../tunnel/headers.js';
import { ignoreError, splice } from '../../tunnel/transport.js';

/** A request as it crosses the tunnel: hop-by-hop fields gone, X-Forwarded-* already set. */
export interface Forwarded {
  method: string;
  /** Request target, `/path?query`. */
  path: string;
  /** The public host the visitor asked for (`alice.tunnel.example.com`). */
  authority: string;
  headers: OutgoingHttpHeaders;
  /** The Upgrade protocol (`websocket`) for an upgrade request. */
  protocol?: string;
}

/** A response from the tunnel client: status, headers, and the body: whole (a small one) or as a stream. */
export interface Exchange {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer | Readable;
}

/** An upgrade the target accepted: its 101 headers and the raw byte stream to splice to the visitor. */
export interface Upgraded {
  status: 101;
  headers: OutgoingHttpHeaders;
  stream: Duplex;
}

/**
 * The visitor's side of a relay (its response): a 'close' before the answer came means the visitor went away,
 * and the pending exchange is cancelled at the target.
 */
export type Visitor = Pick<HttpResponse, 'once' | 'off' | 'destroyed'>;

/** Where a tunnel's requests go: the local session, or the peer process holding it. */
export interface Upstream {
  request(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Exchange>;
  upgrade(fwd: Forwarded, visitor: Visitor): Promise<Upgraded | Exchange>;
}

/** Why a request could not be relayed; nothing has been written to the visitor yet. */
export class TunnelError extends Error {
  readonly status: number;
  readonly code: string;
  /** Headers that belong to the answer (WWW-Authenticate on a 401). */
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, detail: string, headers: Record<string, string> = {}) {
    // An expected condition (no client, a timeout, a visitor who left), not a bug: no stack trace to take.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail);
    Error.stackTraceLimit = stackTraceLimit;
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The status of an exchange the visitor gave up on before its answer (nginx's "client closed request"). */
export const VISITOR_GONE = 499;

export function visitorGone(host: string): TunnelError {
  return new TunnelError(VISITOR_GONE, 'visitor-gone', `the visitor left before ${host} answered`);
}

/**
 * Relays the request and writes the answer. Resolves when the response (or the spliced upgrade) is over.
 * Rejects with TunnelError only while nothing has been written.
 */
export async function relay(
  res: HttpResponse,
  upgrade: UpgradeRequest | undefined,
  fwd: Forwarded,
  body: Readable | null,
  upstream: Upstream,
): Promise<void> {
  if (upgrade) {
    const answer = await upstream.upgrade(fwd, res);
    if (answer.status === 101) {
      const up = answer as Upgraded;
      // Set before the claim, which ends the response for the log: the access log must say 101, not 200.
      res.statusCode = 101;
      const socket = upgrade.claim();
      socket.write(switchingProtocolsHead(upgrade.protocol, up.headers));
      if (upgrade.head.length > 0) up.stream.write(upgrade.head);
      return splice(socket, up.stream);
    }
    return writeExchange(res, answer as Exchange);
  }
  return writeExchange(res, await upstream.request(fwd, body, res));
}

/** Writes status, headers and the body; a failure mid-body cuts the connection (never a short 200). */
export function writeExchange(res: HttpResponse, ex: Exchange): Promise<void> {
  const body = ex.body;
  if (Buffer.isBuffer(body)) {
    if (!writeHead(res, ex)) return Promise.resolve();
    res.end(body);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const cut = () => res.destroy();
    body.on('error', ignoreError);
    body.on('error', cut);
    res.once('close', () => {
      // The body must not keep the response reachable once it is over (a stream object may outlive its
      // request in memory and would drag the response and its request into the old generation).
      body.off('error', cut);
      if (!body.readableEnded) body.destroy();
      resolve();
    });
    if (!writeHead(res, ex)) return;
    // A streamed body (no length: SSE, long polls) may be slow to start; the visitor gets the head now.
    if (ex.headers['content-length'] === undefined) res.flushHeaders();
    body.pipe(res);
  });
}

/**
 * The head, or false (and the connection cut) when Node refuses a field of it: a broken tunnel client must
 * not turn into a 500 page with a 200 half-written.
 */
function writeHead(res: HttpResponse, ex: Exchange): boolean {
  try {
    res.writeHead(ex.status, ex.headers);
    return true;
  } catch {
    res.destroy();
    return false;
  }
}
