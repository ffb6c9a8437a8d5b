// One connected tunnel client, seen from the public server: an HTTP/2 client session over its WebSocket.
// Each visitor request is one stream. Lives in the process-wide registry, not in a config generation, so a
// reload that keeps the site keeps it.
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { IncomingHttpHeaders as H2Headers } from 'node:http2';
import type { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import { h2RequestHeaders, plainHeaders } from '../../tunnel/headers.js';
import { H_DETAIL, H_ERROR } from '../../tunnel/protocol.js';
import { heartbeat, ignoreError } from '../../tunnel/transport.js';
import {
  TunnelError,
  visitorGone,
  type Exchange,
  type Forwarded,
  type Upgraded,
  type Upstream,
  type Visitor,
} from './relay.js';
import type { TunnelSettings } from './options.js';

export class TunnelSession implements Upstream {
  readonly host: string;
  readonly token: string;
  /** Which configured secret the client presented (a hash), for the per-secret session limit. */
  readonly secretId: string;
  readonly remote: string;
  private readonly ws: WebSocket;
  private readonly h2: ClientHttp2Session;
  private readonly settings: () => TunnelSettings;
  private active = 0;
  private closedFlag = false;
  private readonly onClosed: ((session: TunnelSession, reason: string) => void)[] = [];
  private readonly stopHeartbeat: () => void;

  constructor(init: {
    host: string;
    token: string;
    secretId: string;
    remote: string;
    ws: WebSocket;
    h2: ClientHttp2Session;
    settings: () => TunnelSettings;
  }) {
    this.host = init.host;
    this.token = init.token;
    this.secretId = init.secretId;
    this.remote = init.remote;
    this.ws = init.ws;
    this.h2 = init.h2;
    this.settings = init.settings;
    this.stopHeartbeat = heartbeat(this.ws, this.settings().pingIntervalMs, () =>
      this.close('no answer to heartbeat'),
    );
    this.ws.once('close', () => this.close('connection closed'));
    this.h2.once('close', () => this.close('session closed'));
    this.h2.once('goaway', () => this.close('client went away'));
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  onClose(listener: (session: TunnelSession, reason: string) => void): void {
    this.onClosed.push(listener);
  }

  /** Ends the session: the client sees the WebSocket close (and reconnects, unless it is stopping). */
  close(reason: string, code = 1000): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.stopHeartbeat();
    this.h2.destroy();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason.slice(0, 120));
    else this.ws.terminate();
    // A peer that does not finish the close handshake is cut.
    setTimeout(() => this.ws.terminate(), 2000).unref();
    for (const listener of this.onClosed) listener(this, reason);
  }

  request(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Exchange> {
    const stream = this.open(fwd, body !== null);
    if (body) {
      body.on('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
      body.pipe(stream);
    }
    return this.response(stream, visitor, () => body?.unpipe(stream));
  }

  async upgrade(fwd: Forwarded, visitor: Visitor): Promise<Upgraded | Exchange> {
    const stream = this.open(fwd, true);
    const answer = await this.response(stream, visitor);
    // Extended CONNECT succeeds with a 2xx; the client sends the target's 101 headers along.
    if (answer.status >= 200 && answer.status < 300) {
      return { status: 101, headers: answer.headers, stream };
    }
    return answer;
  }

  private open(fwd: Forwarded, hasBody: boolean): ClientHttp2Stream {
    const settings = this.settings();
    if (this.closedFlag || this.h2.destroyed || this.h2.closed) {
      throw new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${this.host}`);
    }
    if (this.active >= settings.maxStreams) {
      throw new TunnelError(
        503,
        'tunnel-busy',
        `the tunnel for ${this.host} is carrying its limit of ${settings.maxStreams} requests`,
      );
    }
    let stream: ClientHttp2Stream;
    try {
      stream = this.h2.request(
        h2RequestHeaders(fwd.method, fwd.path, fwd.authority, fwd.headers, fwd.protocol),
        { endStream: !hasBody },
      );
    } catch (err) {
      throw new TunnelError(
        502,
        'no-tunnel',
        `the tunnel for ${this.host} failed: ${(err as Error).message}`,
      );
    }
    this.active++;
    stream.once('close', () => this.active--);
    stream.on('error', ignoreError);
    if (settings.idleTimeoutMs > 0) {
      stream.setTimeout(settings.idleTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    }
    return stream;
  }

  /**
   * Waits for the response head (at most `timeout`); a stream error before it is a TunnelError. A visitor who
   * goes away meanwhile cancels the stream, and with it the request at the target.
   */
  private response(stream: ClientHttp2Stream, visitor: Visitor, abandon?: () => void): Promise<Exchange> {
    const timeoutMs = this.settings().responseTimeoutMs;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: TunnelError) => {
        clearTimeout(timer);
        stream.off('response', onResponse);
        stream.off('close', onClose);
        visitor.off('close', onGone);
        abandon?.();
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      };
      const onGone = () => fail(visitorGone(this.host));
      visitor.once('close', onGone);
      // Gone already (while the request was being prepared): its 'close' will not come again.
      if (visitor.socket?.destroyed) queueMicrotask(onGone);
      if (timeoutMs > 0) {
        timer = setTimeout(
          () =>
            fail(
              new TunnelError(504, 'timeout', `the tunnel client for ${this.host} did not answer in time`),
            ),
          timeoutMs,
        );
      }
      const onClose = () =>
        fail(new TunnelError(502, 'no-tunnel', `the tunnel for ${this.host} closed before an answer came`));
      stream.once('close', onClose);
      const onResponse = (headers: H2Headers) => {
        clearTimeout(timer);
        stream.off('close', onClose);
        visitor.off('close', onGone);
        const code = headers[H_ERROR];
        if (typeof code === 'string') {
          stream.resume();
          const status = Number(headers[':status']) || 502;
          reject(new TunnelError(status, code, String(headers[H_DETAIL] ?? 'the tunnel client failed')));
          return;
        }
        resolve({ status: Number(headers[':status']), headers: plainHeaders(headers), body: stream });
      };
      stream.once('response', onResponse);
    });
  }
}
