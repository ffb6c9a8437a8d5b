// One connected tunnel client, seen from the public server: an HTTP/2 client session over its WebSocket.
// Each visitor request (or TCP connection) is one stream. Lives in the process-wide registry, not in a
// config generation, so a reload that keeps the site keeps it.
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { IncomingHttpHeaders as H2Headers } from 'node:http2';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import { clientIp } from '../../core/forwarded.js';
import { h2RequestHeaders, plainHeaders } from '../../tunnel/headers.js';
import { H_DETAIL, H_ERROR, type TrafficCounters } from '../../tunnel/protocol.js';
import { heartbeat, ignoreError, joinHalfOpen } from '../../tunnel/transport.js';
import { ControlStream } from './control.js';
import type { TunnelSettings } from './options.js';
import {
  TunnelError,
  visitorGone,
  type Exchange,
  type Forwarded,
  type Upgraded,
  type Upstream,
  type Visitor,
} from './relay.js';
import type { TcpPort } from './tcp.js';
import type { VisitorAuth } from './visitor-auth.js';

/** The bytes a tunnel's connection has carried, as its socket counts them. */
export interface ByteCounter {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** One tunnel's traffic, for the client (control stream), the log at its end, and the server's metrics. */
export interface TunnelTraffic extends TrafficCounters {
  /** The public host (`alice.tunnel.example.com`): the tunnel's name. */
  name: string;
  proto: 'http' | 'tcp';
  /** The public TCP port of a TCP tunnel. */
  port?: number;
  /** The client's address. */
  remote: string;
  /** When the session was established. */
  since: Date;
}

export interface SessionInit {
  host: string;
  token: string;
  secretId: string;
  remote: string;
  ws: WebSocket;
  h2: ClientHttp2Session;
  settings: () => TunnelSettings;
  /** The socket under the WebSocket, whose byte counts are the tunnel's traffic. */
  transport: ByteCounter;
  /** Visitors must present these (the client's -basic-auth). */
  auth?: VisitorAuth;
  /** A TCP tunnel's public port; its connections become CONNECT streams. */
  tcp?: TcpPort;
}

export class TunnelSession implements Upstream {
  readonly host: string;
  readonly token: string;
  /** Which configured secret the client presented (a hash), for the per-secret session limit. */
  readonly secretId: string;
  readonly remote: string;
  readonly tcp: TcpPort | undefined;
  readonly since = new Date();
  private readonly ws: WebSocket;
  private readonly h2: ClientHttp2Session;
  private readonly settings: () => TunnelSettings;
  private readonly transport: ByteCounter;
  private readonly auth: VisitorAuth | undefined;
  private control: ControlStream | undefined;
  private openStreams = 0;
  private requests = 0;
  private connections = 0;
  private closedFlag = false;
  private readonly onClosed: ((session: TunnelSession, reason: string) => void)[] = [];
  private readonly stopHeartbeat: () => void;

  constructor(init: SessionInit) {
    this.host = init.host;
    this.token = init.token;
    this.secretId = init.secretId;
    this.remote = init.remote;
    this.ws = init.ws;
    this.h2 = init.h2;
    this.settings = init.settings;
    this.transport = init.transport;
    this.auth = init.auth;
    this.tcp = init.tcp;
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

  get proto(): 'http' | 'tcp' {
    return this.tcp ? 'tcp' : 'http';
  }

  /** What the tunnel has carried so far (bytes include the tunnel's own framing). */
  traffic(): TunnelTraffic {
    return {
      name: this.host,
      proto: this.proto,
      ...(this.tcp && { port: this.tcp.port }),
      remote: this.remote,
      since: this.since,
      requests: this.requests,
      connections: this.connections,
      bytesIn: this.transport.bytesWritten,
      bytesOut: this.transport.bytesRead,
      openStreams: this.openStreams,
    };
  }

  /** Registered: tell the client it is online (with its TCP port), then its traffic as it changes. */
  goOnline(): void {
    if (this.closedFlag) return;
    this.control = new ControlStream(this.h2, () => this.traffic());
    this.control.send({
      type: 'online',
      proto: this.proto,
      host: this.host,
      ...(this.tcp && { port: this.tcp.port }),
    });
    this.tcp?.serve((socket) => this.openTcp(socket));
  }

  onClose(listener: (session: TunnelSession, reason: string) => void): void {
    this.onClosed.push(listener);
  }

  /** Ends the session: the client sees the WebSocket close (and reconnects, unless it is stopping). */
  close(reason: string, code = 1000): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.stopHeartbeat();
    this.control?.close();
    void this.tcp?.close();
    this.h2.destroy();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason.slice(0, 120));
    else this.ws.terminate();
    // A peer that does not finish the close handshake is cut.
    setTimeout(() => this.ws.terminate(), 2000).unref();
    for (const listener of this.onClosed) listener(this, reason);
  }

  request(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Exchange> {
    this.admit(fwd);
    const stream = this.open(fwd, body !== null);
    if (body) {
      body.on('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
      body.pipe(stream);
    }
    return this.response(stream, visitor, () => body?.unpipe(stream));
  }

  async upgrade(fwd: Forwarded, visitor: Visitor): Promise<Upgraded | Exchange> {
    this.admit(fwd);
    const stream = this.open(fwd, true);
    const answer = await this.response(stream, visitor);
    // Extended CONNECT succeeds with a 2xx; the client sends the target's 101 headers along.
    if (answer.status >= 200 && answer.status < 300) {
      return { status: 101, headers: answer.headers, stream };
    }
    return answer;
  }

  /** An HTTP request may enter this tunnel: it carries HTTP, and the visitor has its credentials. */
  private admit(fwd: Forwarded): void {
    if (this.tcp) {
      throw new TunnelError(502, 'no-tunnel', `${this.host} is a TCP tunnel (port ${this.tcp.port})`);
    }
    this.auth?.check(fwd);
  }

  /** Throws unless the session can take one more stream. */
  private checkOpen(): void {
    if (this.closedFlag || this.h2.destroyed || this.h2.closed) {
      throw new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${this.host}`);
    }
    const max = this.settings().maxStreams;
    if (this.openStreams >= max) {
      throw new TunnelError(
        503,
        'tunnel-busy',
        `the tunnel for ${this.host} is carrying its limit of ${max} requests`,
      );
    }
  }

  private open(fwd: Forwarded, hasBody: boolean): ClientHttp2Stream {
    this.checkOpen();
    const settings = this.settings();
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
    this.requests++;
    this.counted(stream);
    if (settings.idleTimeoutMs > 0) {
      stream.setTimeout(settings.idleTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    }
    return stream;
  }

  /** The stream counts as open until it closes. */
  private counted(stream: ClientHttp2Stream): void {
    this.openStreams++;
    stream.once('close', () => this.openStreams--);
    stream.on('error', ignoreError);
  }

  /**
   * One TCP connection on the tunnel's public port: a CONNECT stream to the client, joined to the socket
   * both ways. No idle timeout: an SSH session may rightly sit quiet for hours (TCP keep-alive finds the dead).
   */
  private openTcp(socket: net.Socket): void {
    try {
      this.checkOpen();
    } catch {
      socket.destroy();
      return;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = this.h2.request({
        ':method': 'CONNECT',
        ':authority': `${this.host}:${this.tcp?.port ?? 0}`,
        'x-forwarded-for': clientIp(socket.remoteAddress),
      });
    } catch {
      socket.destroy();
      return;
    }
    this.connections++;
    this.counted(stream);
    stream.once('response', (headers: H2Headers) => {
      if (Number(headers[':status']) !== 200) socket.destroy();
    });
    joinHalfOpen(socket, stream);
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
      if (visitor.destroyed) queueMicrotask(onGone);
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
