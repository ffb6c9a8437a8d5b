// One attempt to forward a request to one upstream: open the request, send the body, and report how it
// went — a response, a WebSocket switch, or a transport error that the caller may retry on another host.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import type { HttpResponse } from '../../core/response.js';
import type { Backend } from './backend.js';
import { h1Attempt } from './h1/client.js';
import type { UpgradeHead } from '../../core/h1/parser.js';
import type { UpstreamConnection } from '../../core/h1/pool.js';
import { InvalidRequestHeadError } from '../../core/h1/request.js';

/** The request body as the attempts see it. */
export type BodySource =
  | { kind: 'none' }
  /** Read once into memory so it can be replayed on another host (try_duration with several hosts). */
  | { kind: 'buffered'; data: Buffer }
  /** Streamed from the client: one attempt only. */
  | { kind: 'stream'; stream: Readable; consumed: boolean };

/** An upstream's answer as the proxy passes it on. */
export interface UpstreamResponse {
  readonly statusCode: number;
  readonly statusMessage: string;
  /** Shaped as IncomingMessage.headers: lowercase names, set-cookie a list, repeats joined. */
  readonly headers: IncomingHttpHeaders;
  /**
   * Streams the body to the client response with backpressure and resolves when the response is
   * complete. An upstream failing mid-body destroys the client response (never a clean end) and rejects;
   * a client going away drops the upstream connection and resolves.
   */
  pipeTo(res: HttpResponse, upstreamName: string): Promise<void>;
  /** Drops the answer unread (its connection is closed). */
  abort(): void;
}

export type AttemptResult =
  | { kind: 'response'; res: UpstreamResponse }
  /** The upstream switched protocols (WebSocket): its connection, out of the pool, and what followed the head. */
  | { kind: 'upgrade'; head: UpgradeHead; conn: UpstreamConnection; rest: Buffer }
  /** The client went away first; nothing more to do. */
  | { kind: 'client-gone' }
  | {
      kind: 'error';
      err: NodeJS.ErrnoException;
      /** 504 rather than 502: the upstream took the request but did not answer in time. */
      timedOut: boolean;
      /** A pooled connection the upstream had closed, failing before any byte of the answer: not the host's fault. */
      staleSocket: boolean;
    };

export interface AttemptOptions {
  readonly dialTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** Caddy only forwards an upgrade when the outgoing request (after header rules) still asks for one. */
  readonly upgrade: boolean;
}

/**
 * One attempt, over the upstream's connection pool (h1/). `fresh` asks for a new connection rather than a
 * pooled one (the retry after a stale one). A header or path that must not be sent is a 502 before anything
 * is sent.
 */
export function attempt(
  ctx: RequestContext,
  backend: Backend,
  path: string,
  headers: OutgoingHttpHeaders,
  body: BodySource,
  opts: AttemptOptions,
  fresh = false,
): Promise<AttemptResult> {
  try {
    return h1Attempt(ctx, backend.pool, path, headers, body, opts, fresh);
  } catch (err) {
    if (!(err instanceof InvalidRequestHeadError)) throw err;
    const message = `proxy: upstream ${backend.target.name}: ${err.message}; not sent`;
    throw new HttpError(502, message, { cause: err });
  }
}

/** Reads a whole stream into one buffer (used only when try_duration asks for a replayable body). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
