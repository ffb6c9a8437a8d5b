// One HTTP stream from the server, forwarded to the local target: the request as HTTP/1.1 (Host rewritten
// as asked), the answer back on the stream. Capture for the inspector tees both bodies as they pass.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { h2ResponseHeaders, plainHeaders } from './headers.js';
import type { CaptureStore, Recorder } from './inspector/capture.js';
import { H_DETAIL, H_ERROR } from './protocol.js';
import { ignoreError, splice } from './transport.js';

/** The local HTTP server the tunnel forwards to. */
export interface HttpTarget {
  host: string;
  port: number;
  /** `rewrite` (Host = target), `preserve` (Host = public host), or a literal Host value. */
  hostHeader: string;
  agent: http.Agent;
}

/** One finished exchange, for the request lines and the counters. */
export interface ExchangeSummary {
  method: string;
  path: string;
  /** The status, or undefined when the target failed or the visitor left first. */
  status: number | undefined;
  /** `websocket` for an upgrade. */
  upgrade?: string;
  /** Why it failed (`connection refused`, `cancelled`). */
  error?: string;
  durationMs: number;
  /** Its inspector entry. */
  id?: string;
}

export interface ForwardContext {
  target: HttpTarget;
  /** The tunnel's name, for captured exchanges. */
  tunnel: string;
  capture: CaptureStore | undefined;
  done(summary: ExchangeSummary): void;
}

export function targetUrl(t: { host: string; port: number }): string {
  return `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

function hostFor(target: HttpTarget, authority: string): string {
  const h = target.hostHeader;
  if (h === 'rewrite') return `${target.host}:${target.port}`;
  if (h === 'preserve') return authority;
  return h;
}

/** The visitor's address: the last X-Forwarded-For entry, the one the public server appended. */
function remoteOf(headers: OutgoingHttpHeaders): string {
  const xff = headers['x-forwarded-for'];
  const list = Array.isArray(xff) ? xff.join(',') : String(xff ?? '');
  return list.slice(list.lastIndexOf(',') + 1).trim();
}

export function forwardHttp(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  ctx: ForwardContext,
): void {
  const started = performance.now();
  const { target } = ctx;
  const protocol = typeof headers[':protocol'] === 'string' ? headers[':protocol'] : undefined;
  const method = protocol ? 'GET' : String(headers[':method']);
  const path = String(headers[':path'] ?? '/');
  const out = plainHeaders(headers);
  out.host = hostFor(target, String(headers[':authority'] ?? ''));
  if (protocol) Object.assign(out, { connection: 'Upgrade', upgrade: protocol });
  stream.on('error', ignoreError);
  const rec: Recorder | undefined = ctx.capture?.begin({
    tunnel: ctx.tunnel,
    remoteAddr: remoteOf(out),
    method,
    path,
    headers: out,
  });
  let reported = false;
  const report = (status: number | undefined, error?: string) => {
    if (reported) return;
    reported = true;
    rec?.finish(error);
    ctx.done({
      method,
      path,
      status,
      ...(protocol && { upgrade: protocol }),
      ...(error && { error }),
      durationMs: performance.now() - started,
      ...(rec && { id: rec.id }),
    });
  };
  const req = http.request({
    host: target.host,
    port: target.port,
    method,
    path,
    headers: out,
    agent: protocol ? false : target.agent,
  });
  req.on('error', (err: NodeJS.ErrnoException) => {
    if (stream.headersSent || stream.destroyed) {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      report(answer?.statusCode, stream.destroyed ? 'cancelled' : (err.code ?? err.message));
      return;
    }
    const why = err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message);
    stream.respond(
      {
        ':status': 502,
        [H_ERROR]: 'target-down',
        [H_DETAIL]: `the tunnel client could not reach ${targetUrl(target)}: ${why}`,
      },
      { endStream: true },
    );
    report(502, why);
  });
  req.on('upgrade', (res, socket, head) => {
    if (stream.destroyed) {
      socket.destroy();
      report(undefined, 'cancelled');
      return;
    }
    stream.respond(h2ResponseHeaders(200, res.headers));
    if (head.length > 0) stream.write(head);
    rec?.upgraded(protocol ?? 'websocket', res.headers);
    upgraded = true;
    void splice(stream, socket).then(() => report(101));
  });
  let answer: IncomingMessage | undefined;
  let upgraded = false;
  req.on('response', (res) => {
    answer = res;
    const status = res.statusCode ?? 502;
    if (stream.destroyed) {
      res.destroy();
      return;
    }
    const noBody = method === 'HEAD' || status === 204 || status === 304;
    stream.respond(h2ResponseHeaders(status, res.headers), { endStream: noBody });
    rec?.response(status, res.headers);
    if (noBody) res.resume();
    else {
      res.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
      if (rec) res.on('data', (chunk: Buffer) => rec.responseData(chunk));
      res.pipe(stream);
    }
  });
  // The visitor went away (or the server cancelled): stop talking to the target. A stream reset by the
  // server counts as finished on our side, so what decides is whether the target's answer came in whole.
  stream.once('close', () => {
    const whole = req.writableFinished && answer?.complete === true;
    if (!whole) req.destroy();
    if (!upgraded) report(answer?.statusCode, whole ? undefined : 'cancelled');
  });
  if (protocol) req.end();
  else {
    if (rec) stream.on('data', (chunk: Buffer) => rec.requestData(chunk));
    stream.pipe(req);
  }
}
