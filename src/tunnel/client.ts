// The tunnel client (`nodecaddy tunnel`): dials the public server over one WebSocket, answers the streams
// the server opens on it and forwards each to the local target (HTTP requests, or TCP connections for a
// TCP tunnel).
// Reconnects forever with exponential backoff and jitter; only a refusal that retrying cannot fix (wrong
// secret, bad name, another protocol version) stops it.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { ConnectionPool } from '../core/h1/pool.js';
import { dialServer } from './client-dial.js';
import { forwardHttp, targetUrl, type ExchangeSummary, type HttpTarget } from './forward-http.js';
import { forwardTcp, type TcpSummary } from './forward-tcp.js';
import { JoinLinks, type JoinOutcome } from './client-links.js';
import { END, splitHead } from './frames.js';
import { errorWire, requestOf, type RequestHead } from './headers.js';
import type { CaptureStore } from './inspector/capture.js';
import { wsMux } from './link.js';
import { Series } from './metrics.js';
import { MuxStream } from './mux-stream.js';
import type { Mux } from './mux.js';
import {
  FATAL_REFUSALS,
  H_BASIC_AUTH,
  H_DETAIL,
  H_ERROR,
  H_LINK,
  H_PREFER_PORT,
  H_PROTO,
  H_REMOTE_PORT,
  H_SECRET,
  H_TOKEN,
  H_VERSION,
  PROTOCOL_VERSION,
  type ControlMessage,
  type TrafficCounters,
} from './protocol.js';
import { heartbeat } from './transport.js';

export interface TunnelClientOptions {
  /** The public server, `https://tunnel.example.com` (user:pass@ for a basicauth-guarded site). */
  server: URL;
  secret: string;
  name: string;
  /** The local target: an HTTP server, or any TCP service for a TCP tunnel. */
  target: { proto: 'http' | 'tcp'; host: string; port: number };
  /** `rewrite` (Host = target), `preserve` (Host = public host), or a literal Host value. */
  hostHeader: string;
  /** Connect to this host:port instead of resolving the public host. */
  dial?: { host: string; port: number };
  /** `user:pass` every visitor must present (HTTP tunnels), checked by the server. */
  basicAuth?: string;
  /** The public port a TCP tunnel insists on. */
  remotePort?: number;
  pingIntervalMs: number;
  handshakeTimeoutMs: number;
  maxBackoffMs: number;
  /** Where the inspector's exchanges go (undefined: nothing is captured). */
  capture?: CaptureStore;
  events: ClientEvents;
}

export interface ClientEvents {
  /** Status lines: forwarding, reconnecting, refused. */
  info(line: string): void;
  /** An HTTP exchange ended. */
  exchange(summary: ExchangeSummary): void;
  /** A TCP connection ended. */
  tcp(summary: TcpSummary): void;
  /** Something the status screen shows changed (state, latency, traffic). */
  changed(): void;
}

export type ClientState = 'connecting' | 'online' | 'reconnecting' | 'refused' | 'stopped';

/** What the server says about the tunnel's traffic (as of `since`, the session's start). */
export type ServerTraffic = TrafficCounters & { since: string };

const MIN_BACKOFF_MS = 250;

export class TunnelClient {
  readonly o: TunnelClientOptions;
  /** Proves to the server that a reconnect is this same client, so it may replace its stale session. */
  private readonly token = randomBytes(16).toString('hex');
  /** The local HTTP target and the connections the tunnel keeps to it (at most 64 idle). */
  readonly httpTarget: HttpTarget;
  /** Visitor requests (HTTP tunnels) and connections (TCP tunnels) seen by this client. */
  readonly http = new Series();
  readonly conns = new Series();
  state: ClientState = 'connecting';
  /** The public port of a TCP tunnel, once the server gave one. */
  tcpPort: number | undefined;
  latencyMs: number | undefined;
  /** The tunnel's traffic over all its links, as the server process holding the name reports it. */
  traffic: ServerTraffic | undefined;
  /** The links to the server's other worker processes (it says how many it wants). */
  private readonly joins = new JoinLinks(() => this.dialJoin());
  /** The last problem (refusal, lost connection), for the status screen. */
  lastError: string | undefined;
  private ws: WebSocket | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private connectedOnce = false;
  private dnsHinted = false;
  /** The TLS handshake names the tunnel (publicHost) instead of the apex: see connect(). */
  private sniOnName = false;
  private resolveDone!: (code: number) => void;
  /** Resolves with the exit code when the client stops (0 after stop(), 1 after a fatal refusal). */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));

  constructor(options: TunnelClientOptions) {
    this.o = options;
    const { host, port } = options.target;
    this.httpTarget = {
      host,
      port,
      url: targetUrl({ host, port }),
      hostHeader: options.hostHeader,
      pool: new ConnectionPool({ host, port, socketPath: undefined, fallbackDelayMs: undefined }, 64),
    };
  }

  /** The public URL: `https://alice.tunnel.example.com`, or `tcp://tunnel.example.com:20001` once known. */
  get publicUrl(): string {
    const s = this.o.server;
    if (this.o.target.proto === 'tcp') return `tcp://${s.hostname}:${this.tcpPort ?? '?'}`;
    return `${s.protocol.replace('ws', 'http')}//${this.o.name}.${s.host}`;
  }

  get targetUrl(): string {
    const t = this.o.target;
    return t.proto === 'tcp' ? `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}` : targetUrl(t);
  }

  start(): void {
    this.connect();
  }

  /** Closes the tunnel cleanly (GOAWAY, WebSocket close) and resolves `done` with 0. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.setState('stopped');
    clearTimeout(this.retryTimer);
    this.joins.closeAll();
    const ws = this.ws;
    if (ws && ws.readyState !== ws.CLOSED) {
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.close(1000, 'client stopped');
      const timer = setTimeout(() => ws.terminate(), 2000);
      await closed;
      clearTimeout(timer);
    }
    this.httpTarget.pool.close();
    this.resolveDone(0);
  }

  private setState(state: ClientState, error?: string): void {
    this.state = state;
    if (error !== undefined) this.lastError = error;
    this.o.events.changed();
  }

  private handshakeHeaders(): Record<string, string> {
    const h: Record<string, string> = {
      [H_VERSION]: PROTOCOL_VERSION,
      [H_SECRET]: this.o.secret,
      [H_TOKEN]: this.token,
      [H_PROTO]: this.o.target.proto,
    };
    if (this.o.basicAuth) h[H_BASIC_AUTH] = Buffer.from(this.o.basicAuth).toString('base64');
    if (this.o.remotePort !== undefined) h[H_REMOTE_PORT] = String(this.o.remotePort);
    // After a reconnect, the port we had: kept if it is still free.
    else if (this.tcpPort !== undefined) h[H_PREFER_PORT] = String(this.tcpPort);
    return h;
  }

  private connect(): void {
    const { ws, handshake, serverName, publicHost } = dialServer(
      this.o,
      this.sniOnName,
      this.handshakeHeaders(),
    );
    const s = this.o.server;
    const dial = this.o.dial;
    this.ws = ws;
    let refused = false;
    let opened = false;
    let stopHeartbeat = () => undefined as void;
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      refused = true;
      res.resume();
      this.onRefusal(res);
      ws.terminate();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (opened || refused) return;
      if ((err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') && !dial && !this.dnsHinted) {
        // Retrying alone cannot fix this (unless DNS changes meanwhile): say what would.
        this.dnsHinted = true;
        this.o.events.info(
          `${publicHost} does not resolve: add a wildcard DNS record *.${s.hostname} for the server, ` +
            `or connect to it directly with -dial host:port`,
        );
      }
      if (handshake.tcp && !handshake.tls) {
        // The server is there, the TLS handshake failed (no certificate for that name, or not one we trust).
        this.sniOnName = !this.sniOnName;
        this.retry(`${err.message} (TLS server name ${serverName})`);
        return;
      }
      this.retry(err.message);
    });
    let socket: Duplex | undefined;
    ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket));
    ws.on('open', () => {
      opened = true;
      // A server that breaks the protocol is cut (close code 1002), and the client reconnects.
      const mux = wsMux(ws, socket);
      mux.onOpen = (id, flags, payload) => this.onStream(mux, id, flags, payload);
      mux.onControl = (payload) => this.onControlFrame(payload);
      // The round trips of the heartbeat are the latency the status screen shows.
      stopHeartbeat = heartbeat(
        ws,
        this.o.pingIntervalMs,
        () => undefined,
        (ms) => {
          this.latencyMs = ms;
          this.o.events.changed();
        },
      );
    });
    ws.on('close', (code, reason) => {
      stopHeartbeat();
      this.joins.closeAll();
      if (opened && !this.stopping)
        this.retry(`connection lost (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
    });
  }

  /** One join link: served like the main link once open (see client-links.ts). */
  private dialJoin(): Promise<JoinOutcome> {
    if (this.stopping) return Promise.resolve({ kind: 'stop' });
    const { ws } = dialServer(this.o, this.sniOnName, { ...this.handshakeHeaders(), [H_LINK]: 'join' });
    return new Promise((resolve) => {
      let socket: Duplex | undefined;
      ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket));
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        res.resume();
        ws.terminate();
        resolve({ kind: res.headers[H_ERROR] === 'already-linked' ? 'again' : 'stop' });
      });
      ws.on('error', () => resolve({ kind: 'stop' }));
      ws.once('open', () => {
        const mux = wsMux(ws, socket);
        mux.onOpen = (id, flags, payload) => this.onStream(mux, id, flags, payload);
        const stopHeartbeat = heartbeat(ws, this.o.pingIntervalMs, () => undefined);
        ws.once('close', stopHeartbeat);
        resolve({ kind: 'open', ws });
      });
    });
  }

  private onRefusal(res: IncomingMessage): void {
    const code = String(res.headers[H_ERROR] ?? '');
    let detail = String(res.headers[H_DETAIL] ?? `HTTP ${res.statusCode}`);
    if (code === 'bad-version' && !res.headers[H_VERSION]) {
      // An older server says only what it wants; say what we speak.
      detail += ` (this client speaks tunnel protocol ${PROTOCOL_VERSION}: run the same nodecaddy version on both ends)`;
    }
    if (FATAL_REFUSALS.has(code)) {
      this.o.events.info(`tunnel refused by ${this.o.server.host}: ${detail}`);
      this.stopping = true;
      this.setState('refused', detail);
      this.resolveDone(1);
    } else this.retry(`refused: ${detail}`);
  }

  private retry(why: string): void {
    if (this.stopping || this.retryTimer) return;
    const base = Math.min(this.o.maxBackoffMs, MIN_BACKOFF_MS * 2 ** this.failures);
    // Full jitter in [base/2, base): many clients of one restarted server do not come back in lockstep.
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.failures = Math.min(this.failures + 1, 20);
    this.setState(this.connectedOnce ? 'reconnecting' : 'connecting', why);
    this.o.events.info(`${why}; reconnecting in ${(delay / 1000).toFixed(1)}s`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopping) this.connect();
    }, delay);
  }

  /** A stream the server opened: a visitor's request, or a connection to a TCP tunnel. */
  private onStream(mux: Mux, id: number, flags: number, payload: Buffer): void {
    const stream = new MuxStream(mux, id);
    // A head that is not JSON cuts the link (splitHead throws ProtocolError); JSON of the wrong shape is
    // refused for this stream alone.
    const { head: wire, body } = splitHead(payload);
    const end = (flags & END) !== 0;
    stream.accepted(body.length, end);
    let head: RequestHead;
    try {
      head = requestOf(wire);
    } catch {
      stream.reset('protocol');
      return;
    }
    const t = this.o.target;
    if (head.method === 'CONNECT' && head.protocol === undefined) {
      if (t.proto !== 'tcp') {
        stream.reply(errorWire(502, 'target-down', 'this tunnel client serves HTTP'), undefined, true);
        stream.reset('refused');
        return;
      }
      this.conns.opened();
      forwardTcp(stream, head, body, t, (summary) => {
        this.conns.closed(summary.durationMs);
        this.o.events.tcp(summary);
      });
      return;
    }
    this.conns.opened();
    this.http.opened();
    forwardHttp(stream, head, body, end, {
      target: this.httpTarget,
      tunnel: this.o.name,
      capture: this.o.capture,
      done: (summary) => {
        this.conns.closed(summary.durationMs);
        this.http.closed(summary.durationMs);
        this.o.events.exchange(summary);
      },
    });
  }

  /** A CONTROL frame of the main link: one JSON message (`online` first, then traffic). */
  private onControlFrame(payload: Buffer): void {
    const message = parseControl(payload);
    if (message) this.onControl(message);
  }

  private onControl(message: ControlMessage): void {
    if (message.type === 'online') {
      if (message.port !== undefined) this.tcpPort = message.port;
      this.failures = 0;
      this.lastError = undefined;
      this.o.events.info(
        this.connectedOnce
          ? `Reconnected: ${this.publicUrl} -> ${this.targetUrl}`
          : `Forwarding ${this.publicUrl} -> ${this.targetUrl}`,
      );
      this.connectedOnce = true;
      this.setState('online');
      if (message.links !== undefined && message.links > 1 && this.o.target.proto === 'http') {
        this.joins.want(message.links);
      }
      return;
    }
    if (message.type === 'traffic') {
      const { since, requests, connections, bytesIn, bytesOut, openStreams } = message;
      this.traffic = { since, requests, connections, bytesIn, bytesOut, openStreams };
      this.o.events.changed();
    }
  }
}

/** A CONTROL frame's JSON message; undefined for one we cannot read (the next traffic update comes soon). */
function parseControl(payload: Buffer): ControlMessage | undefined {
  try {
    return JSON.parse(payload.toString('utf8')) as ControlMessage;
  } catch {
    return undefined;
  }
}
