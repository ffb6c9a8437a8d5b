// One HTTP stream from the server, forwarded to the local target: the request as HTTP/1.1 (Host rewritten
// as asked), the answer back on the stream. Capture for the inspector tees both bodies as they pass. A
// request goes over our own connection pool (target-h1.ts); a WebSocket upgrade, which then becomes a byte
// stream both ways, over a connection of its own from Node's http client.
import http from '../core/node-http.js';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ConnectionPool } from '../core/h1/pool.js';
import { errorWire, responseWire, type RequestHead } from './headers.js';
import type { CaptureStore, Recorder } from './inspector/capture.js';
import type { MuxStream } from './mux-stream.js';
import { StreamDuplex } from './stream-duplex.js';
import { forwardToTarget, type TargetObserver } from './target-h1.js';
import { ignoreError, splice } from './transport.js';

/** The local HTTP server the tunnel forwards to. */
export interface HttpTarget {
  host: string;
  port: number;
  /** `http://host:port`, for messages. */
  url: string;
  /** `rewrite` (Host = target), `preserve` (Host = public host), or a literal Host value. */
  hostHeader: string;
  /** Keep-alive connections to it. */
  pool: ConnectionPool;
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

/**
 * Forwards one stream to the target. `body` is the start of the request body that came in the OPEN frame,
 * `end` says it is all of it (else the rest streams in).
 */
export function forwardHttp(
  stream: MuxStream,
  head: RequestHead,
  body: Buffer,
  end: boolean,
  ctx: ForwardContext,
): void {
  const started = performance.now();
  const { target } = ctx;
  const protocol = head.protocol;
  const method = protocol ? 'GET' : head.method;
  const path = head.path;
  const out = head.headers;
  out.host = hostFor(target, head.authority);
  if (protocol) {
    out.connection = 'Upgrade';
    out.upgrade = protocol;
  }
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
  const observer = { url: target.url, rec, report };
  if (protocol) forwardUpgrade(stream, { path, headers: out, body, end, protocol }, target, observer);
  else forwardToTarget(stream, target.pool, { method, path, headers: out, body, end }, observer);
}

interface UpgradeRequest {
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer;
  end: boolean;
  protocol: string;
}

/**
 * A WebSocket (or other) upgrade: once the target switches protocols, the stream and the target's socket
 * are spliced; a target that answers without switching has its answer passed on.
 */
function forwardUpgrade(
  stream: MuxStream,
  u: UpgradeRequest,
  target: HttpTarget,
  observer: TargetObserver,
): void {
  const { rec, report } = observer;
  const req = http.request({
    host: target.host,
    port: target.port,
    method: 'GET',
    path: u.path,
    headers: u.headers,
    agent: false,
  });
  let answer: IncomingMessage | undefined;
  let replied = false;
  let upgraded = false;
  const resumeAnswer = () => answer?.resume();
  // The bytes after the upgrade come through a duplex; an OPEN that ended the stream leaves nothing to splice.
  let duplex: StreamDuplex | undefined;
  if (u.end) {
    stream.sink = {
      deliver: (chunk) => stream.consumed(chunk.length),
      abandoned: ignoreError,
      resumeWriting: resumeAnswer,
    };
    stream.consumed(u.body.length);
  } else {
    duplex = new StreamDuplex(stream);
    duplex.on('error', ignoreError);
    duplex.onWritable = resumeAnswer;
    if (u.body.length > 0) duplex.deliver(u.body, false);
  }
  req.end();
  req.on('error', (err: NodeJS.ErrnoException) => {
    if (replied || stream.done) {
      duplex?.destroy();
      stream.reset('target-error');
      report(answer?.statusCode, stream.done && !replied ? 'cancelled' : (err.code ?? err.message));
      return;
    }
    const why = err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message);
    report(502, why);
    replied = true;
    stream.reply(
      errorWire(502, 'target-down', `the tunnel client could not reach ${observer.url}: ${why}`),
      undefined,
      true,
    );
    duplex?.destroy();
  });
  req.on('upgrade', (res, socket, head) => {
    if (stream.done || !duplex) {
      socket.destroy();
      report(undefined, 'cancelled');
      return;
    }
    replied = true;
    stream.reply(responseWire(101, res.headers), undefined, false);
    if (head.length > 0) duplex.write(head);
    rec?.upgraded(u.protocol, res.headers);
    upgraded = true;
    void splice(duplex, socket).then(() => report(101));
  });
  req.on('response', (res) => {
    answer = res;
    const status = res.statusCode ?? 502;
    if (stream.done) {
      res.destroy();
      return;
    }
    rec?.response(status, res.headers);
    replied = true;
    stream.reply(responseWire(status, res.headers), undefined, false);
    res.on('error', ignoreError);
    res.once('close', () => {
      if (!res.complete) stream.reset('target-error');
    });
    res.on('data', (chunk: Buffer) => {
      rec?.responseData(chunk);
      if (!stream.write(chunk)) res.pause();
    });
    res.on('end', () => stream.end());
  });
  stream.onClose = () => {
    if (upgraded) return;
    const whole = answer?.complete === true;
    if (!whole) req.destroy();
    report(answer?.statusCode, whole ? undefined : 'cancelled');
  };
}
