// One attempt to forward a request to one upstream: open the request, send the body, and report how it
// went — a response, a WebSocket switch, or a transport error that the caller may retry on another host.
import type {
  ClientRequest,
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import type { Backend } from './backend.js';
import { h1Attempt } from './h1/client.js';
import { InvalidRequestHeadError } from './h1/request.js';
import { pipeResponse } from './response.js';

/** The request body as the attempts see it. */
export type BodySource =
  | { kind: 'none' }
  /** Read once into memory so it can be replayed on another host (try_duration with several hosts). */
  | { kind: 'buffered'; data: Buffer }
  /** Streamed from the client: one attempt only. */
  | { kind: 'stream'; stream: Readable; consumed: boolean };

/** An upstream's answer as the proxy passes it on, from our HTTP/1.1 client or from node:http. */
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
  pipeTo(res: ServerResponse, upstreamName: string): Promise<void>;
  /** Drops the answer unread (its connection is closed). */
  abort(): void;
}

export type AttemptResult =
  | { kind: 'response'; res: UpstreamResponse }
  | { kind: 'upgrade'; res: IncomingMessage; socket: Socket; head: Buffer }
  /** The client went away first; nothing more to do. */
  | { kind: 'client-gone' }
  | {
      kind: 'error';
      err: NodeJS.ErrnoException;
      /** 504 rather than 502: the upstream took the request but did not answer in time. */
      timedOut: boolean;
      /** A pooled connection the upstream had closed: safe to retry at once, and not the host's fault. */
      staleSocket: boolean;
    };

export interface AttemptOptions {
  readonly dialTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** Caddy only forwards an upgrade when the outgoing request (after header rules) still asks for one. */
  readonly upgrade: boolean;
}

/**
 * One attempt. Plain-HTTP upstreams go through our own HTTP/1.1 client (h1/); https upstreams and
 * WebSocket/upgrade requests through node:http. `fresh` asks for a new connection rather than a pooled one
 * (the retry after a stale one). A header or path that must not be sent is a 502 before anything is sent.
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
    if (backend.pool && !opts.upgrade && ctx.upgrade === undefined)
      return h1Attempt(ctx, backend.pool, path, headers, body, opts, fresh);
    return nodeAttempt(ctx, backend, path, headers, body, opts);
  } catch (err) {
    if (!refusedHead(err)) throw err;
    const message = `proxy: upstream ${backend.target.name}: ${(err as Error).message}; not sent`;
    throw new HttpError(502, message, { cause: err });
  }
}

/** A header or path our client or node:http refused to put on the wire (CR, LF, NUL, bad names). */
function refusedHead(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return (
    err instanceof InvalidRequestHeadError ||
    code === 'ERR_INVALID_CHAR' ||
    code === 'ERR_INVALID_HTTP_TOKEN' ||
    code === 'ERR_UNESCAPED_CHARACTERS'
  );
}

/** The attempt through node:http (https upstreams, upgrades). Throws if node:http refuses a header. */
function nodeAttempt(
  ctx: RequestContext,
  backend: Backend,
  path: string,
  headers: OutgoingHttpHeaders,
  body: BodySource,
  opts: AttemptOptions,
): Promise<AttemptResult> {
  const upstreamReq = backend.request(backend.requestOptions(ctx.req.method ?? 'GET', path, headers));
  return new Promise((resolve) => {
    let settled = false;
    let responseTimer: NodeJS.Timeout | undefined;
    const settle = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      if (responseTimer) clearTimeout(responseTimer);
      ctx.res.off('close', onClientClose);
      resolve(result);
    };

    // A client that goes away before the answer cancels the upstream request (Go's request context).
    const onClientClose = () => {
      if (ctx.res.writableFinished) return;
      upstreamReq.destroy();
      settle({ kind: 'client-gone' });
    };
    ctx.res.once('close', onClientClose);
    if (ctx.res.destroyed || ctx.req.socket.destroyed) onClientClose();

    upstreamReq.on('socket', (socket: Socket) => {
      // `timeout` is a connect timeout only, as in Caddy; a reused pooled socket is already connected.
      if (!socket.connecting || opts.dialTimeoutMs <= 0) return;
      const timer = setTimeout(() => {
        const err: NodeJS.ErrnoException = new Error(`dial timeout after ${opts.dialTimeoutMs}ms`);
        err.code = 'ETIMEDOUT';
        upstreamReq.destroy(err);
      }, opts.dialTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    if (opts.responseTimeoutMs > 0) {
      responseTimer = setTimeout(() => {
        const err: NodeJS.ErrnoException = new Error(`no response within ${opts.responseTimeoutMs}ms`);
        err.code = 'ETIMEDOUT';
        upstreamReq.destroy(err);
        settle({ kind: 'error', err, timedOut: true, staleSocket: false });
      }, opts.responseTimeoutMs);
    }

    upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
      // A body stream error (413, client abort) destroyed the request; the caller already knows why.
      const staleSocket =
        upstreamReq.reusedSocket &&
        (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
        !(body.kind === 'stream' && body.consumed);
      settle({ kind: 'error', err, timedOut: false, staleSocket });
    });
    upstreamReq.on('response', (res: IncomingMessage) => {
      if (settled) {
        res.destroy();
        return;
      }
      settle({ kind: 'response', res: nodeResponse(res, upstreamReq) });
    });
    if (opts.upgrade) {
      upstreamReq.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        if (settled) {
          socket.destroy();
          return;
        }
        settle({ kind: 'upgrade', res, socket, head });
      });
    }

    switch (body.kind) {
      case 'none':
        upstreamReq.end();
        break;
      case 'buffered':
        upstreamReq.end(body.data);
        break;
      case 'stream':
        body.consumed = true;
        body.stream.on('error', (err) => upstreamReq.destroy(err));
        body.stream.pipe(upstreamReq);
        break;
    }
  });
}

function nodeResponse(res: IncomingMessage, upstreamReq: ClientRequest): UpstreamResponse {
  return {
    statusCode: res.statusCode ?? 502,
    statusMessage: res.statusMessage ?? '',
    headers: res.headers,
    pipeTo: (out, upstreamName) => pipeResponse(out, res, upstreamReq, upstreamName),
    abort: () => upstreamReq.destroy(),
  };
}

/** Reads a whole stream into one buffer (used only when try_duration asks for a replayable body). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
