// One HTTP stream from the server, forwarded to the local target: the request as HTTP/1.1 (Host rewritten
// as asked), the answer back on the stream. Capture for the inspector tees both bodies as they pass.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { errorWire, responseWire, type RequestHead } from './headers.js';
import type { CaptureStore, Recorder } from './inspector/capture.js';
import type { MuxStream } from './mux-stream.js';
import { StreamDuplex } from './stream-duplex.js';
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

/**
 * A response body up to this size that arrives within one turn of the event loop (a small answer: head and
 * body in one read) crosses whole in the REPLY frame; a bigger or slower one streams in DATA frames.
 */
const INLINE_BYTES = 64 * 1024;

function joined(chunks: Buffer[]): Buffer | undefined {
  if (chunks.length === 0) return undefined;
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
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
  const req = http.request({
    host: target.host,
    port: target.port,
    method,
    path,
    headers: out,
    agent: protocol ? false : target.agent,
  });
  let answer: IncomingMessage | undefined;
  let replied = false;
  let upgraded = false;
  const resumeAnswer = () => answer?.resume();
  // The request body: whole in the OPEN frame, or streamed from the server through a duplex.
  let duplex: StreamDuplex | undefined;
  if (end) {
    stream.sink = {
      deliver: (chunk) => stream.consumed(chunk.length),
      abandoned: ignoreError,
      resumeWriting: resumeAnswer,
    };
    if (body.length > 0) rec?.requestData(body);
    req.end(body.length > 0 ? body : undefined);
    stream.consumed(body.length);
  } else {
    duplex = new StreamDuplex(stream);
    duplex.on('error', ignoreError);
    duplex.onWritable = resumeAnswer;
    if (body.length > 0) duplex.deliver(body, false);
    if (protocol) req.end();
    else {
      if (rec) duplex.on('data', (chunk: Buffer) => rec.requestData(chunk));
      duplex.pipe(req);
    }
  }
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
      errorWire(502, 'target-down', `the tunnel client could not reach ${targetUrl(target)}: ${why}`),
      undefined,
      true,
    );
    // A request body still coming is not wanted any more.
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
    rec?.upgraded(protocol ?? 'websocket', res.headers);
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
    const wire = responseWire(status, res.headers);
    if (method === 'HEAD' || status === 204 || status === 304) {
      // Answered at 'end', when the exchange counts as complete.
      res.once('end', () => {
        replied = true;
        stream.reply(wire, undefined, true);
      });
      res.resume();
      return;
    }
    res.on('error', ignoreError);
    res.once('close', () => {
      if (!res.complete) stream.reset('target-error');
    });
    // What arrives in this turn of the event loop waits to go with the head.
    let early: Buffer[] = [];
    let earlyBytes = 0;
    const sendHead = () => {
      replied = true;
      stream.reply(wire, joined(early), false);
      early = [];
    };
    const headTimer = setImmediate(sendHead);
    res.on('data', (chunk: Buffer) => {
      rec?.responseData(chunk);
      if (!replied) {
        early.push(chunk);
        earlyBytes += chunk.length;
        if (earlyBytes >= INLINE_BYTES) {
          clearImmediate(headTimer);
          sendHead();
        }
      } else if (!stream.write(chunk)) res.pause();
    });
    res.on('end', () => {
      if (replied) {
        stream.end();
        return;
      }
      clearImmediate(headTimer);
      replied = true;
      stream.reply(wire, joined(early), true);
    });
  });
  // Over both ways, or abandoned by the server (the visitor went away): stop talking to the target. What
  // decides is whether the target's answer came in whole.
  stream.onClose = () => {
    const whole = req.writableFinished && answer?.complete === true;
    if (!whole) req.destroy();
    if (!upgraded) report(answer?.statusCode, whole ? undefined : 'cancelled');
  };
}
