// The tunnel client (`nodecaddy tunnel`): dials the public server over one WebSocket, serves HTTP/2 on it,
// and forwards every stream to the local target. Reconnects forever with exponential backoff and jitter;
// only a refusal that retrying cannot fix (wrong secret, bad name) stops it.
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { h2ResponseHeaders, plainHeaders } from './headers.js';
import {
  FATAL_REFUSALS,
  H_DETAIL,
  H_ERROR,
  H_SECRET,
  H_TOKEN,
  H_VERSION,
  PROTOCOL_VERSION,
  TUNNEL_PATH,
} from './protocol.js';
import { acceptH2, heartbeat, ignoreError, splice } from './transport.js';

export interface TunnelClientOptions {
  /** The public server, `https://tunnel.example.com` (user:pass@ for a basicauth-guarded site). */
  server: URL;
  secret: string;
  name: string;
  /** The local target. */
  target: { host: string; port: number };
  /** `rewrite` (Host = target), `preserve` (Host = public host), or a literal Host value. */
  hostHeader: string;
  /** Connect to this host:port instead of resolving the public host. */
  dial?: { host: string; port: number };
  pingIntervalMs: number;
  handshakeTimeoutMs: number;
  maxBackoffMs: number;
  /** Status lines (connected, reconnecting, refused). */
  info(line: string): void;
  /** One line per request, unless quiet. */
  request?(line: string): void;
}

const MIN_BACKOFF_MS = 250;

export class TunnelClient {
  private readonly o: TunnelClientOptions;
  /** Proves to the server that a reconnect is this same client, so it may replace its stale session. */
  private readonly token = randomBytes(16).toString('hex');
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 });
  private ws: WebSocket | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private connectedOnce = false;
  private dnsHinted = false;
  private resolveDone!: (code: number) => void;
  /** Resolves with the exit code when the client stops (0 after stop(), 1 after a fatal refusal). */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));

  constructor(options: TunnelClientOptions) {
    this.o = options;
  }

  /** The public URL the tunnel serves: the name in front of the server's host. */
  get publicUrl(): string {
    const s = this.o.server;
    return `${s.protocol}//${this.o.name}.${s.host}`;
  }

  get targetUrl(): string {
    const { host, port } = this.o.target;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  start(): void {
    this.connect();
  }

  /** Closes the tunnel cleanly (GOAWAY, WebSocket close) and resolves `done` with 0. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (ws && ws.readyState !== ws.CLOSED) {
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.close(1000, 'client stopped');
      const timer = setTimeout(() => ws.terminate(), 2000);
      await closed;
      clearTimeout(timer);
    }
    this.agent.destroy();
    this.resolveDone(0);
  }

  private connect(): void {
    const s = this.o.server;
    const secure = s.protocol === 'https:' || s.protocol === 'wss:';
    const publicHost = `${this.o.name}.${s.hostname}`;
    const url = new URL(
      `${secure ? 'wss' : 'ws'}://${publicHost}${s.port ? `:${s.port}` : ''}${TUNNEL_PATH}`,
    );
    url.username = s.username;
    url.password = s.password;
    const dial = this.o.dial;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: this.o.handshakeTimeoutMs,
      maxPayload: 64 * 1024 * 1024,
      headers: { [H_VERSION]: PROTOCOL_VERSION, [H_SECRET]: this.o.secret, [H_TOKEN]: this.token },
      ...(dial && {
        createConnection: ((opts: tls.ConnectionOptions) =>
          secure
            ? tls.connect({ ...opts, host: dial.host, port: dial.port, servername: publicHost })
            : net.connect({ host: dial.host, port: dial.port })) as unknown as typeof net.createConnection,
      }),
    });
    this.ws = ws;
    let refused = false;
    let opened = false;
    let stopHeartbeat = () => undefined as void;
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      refused = true;
      res.resume();
      const code = String(res.headers[H_ERROR] ?? '');
      const detail = String(res.headers[H_DETAIL] ?? `HTTP ${res.statusCode}`);
      if (FATAL_REFUSALS.has(code)) {
        this.o.info(`tunnel refused by ${this.o.server.host}: ${detail}`);
        this.stopping = true;
        this.resolveDone(1);
      } else this.retry(`refused: ${detail}`);
      ws.terminate();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (opened || refused) return;
      if ((err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') && !dial && !this.dnsHinted) {
        // Retrying alone cannot fix this (unless DNS changes meanwhile): say what would.
        this.dnsHinted = true;
        this.o.info(
          `${publicHost} does not resolve: add a wildcard DNS record *.${s.hostname} for the server, ` +
            `or connect to it directly with -dial host:port`,
        );
      }
      this.retry(err.message);
    });
    ws.on('open', () => {
      opened = true;
      const session = acceptH2(ws);
      session.on('stream', (stream, headers) => this.onStream(stream, headers));
      stopHeartbeat = heartbeat(ws, this.o.pingIntervalMs, () => undefined);
      // The server registers the session once our SETTINGS arrived; its ACK coming back means we are live.
      session.once('localSettings', () => {
        this.failures = 0;
        this.o.info(
          this.connectedOnce
            ? `Reconnected: ${this.publicUrl} -> ${this.targetUrl}`
            : `Forwarding ${this.publicUrl} -> ${this.targetUrl}`,
        );
        this.connectedOnce = true;
      });
    });
    ws.on('close', (code, reason) => {
      stopHeartbeat();
      if (opened && !this.stopping)
        this.retry(`connection lost (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
    });
  }

  private retry(why: string): void {
    if (this.stopping || this.retryTimer) return;
    const base = Math.min(this.o.maxBackoffMs, MIN_BACKOFF_MS * 2 ** this.failures);
    // Full jitter in [base/2, base): many clients of one restarted server do not come back in lockstep.
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.failures = Math.min(this.failures + 1, 20);
    this.o.info(`${why}; reconnecting in ${(delay / 1000).toFixed(1)}s`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopping) this.connect();
    }, delay);
  }

  private hostFor(headers: IncomingHttpHeaders): string {
    const h = this.o.hostHeader;
    if (h === 'rewrite') return `${this.o.target.host}:${this.o.target.port}`;
    if (h === 'preserve') return String(headers[':authority'] ?? '');
    return h;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const started = performance.now();
    const method = String(headers[':method']);
    const path = String(headers[':path'] ?? '/');
    const protocol = headers[':protocol'];
    const out = plainHeaders(headers);
    out.host = this.hostFor(headers);
    stream.on('error', ignoreError);
    const log = (status: number | string) =>
      this.o.request?.(
        `${protocol ? 'GET' : method} ${path} ${status} ${Math.round(performance.now() - started)}ms`,
      );
    if (protocol) Object.assign(out, { connection: 'Upgrade', upgrade: protocol });
    const req = http.request({
      host: this.o.target.host,
      port: this.o.target.port,
      method: protocol ? 'GET' : method,
      path,
      headers: out,
      agent: protocol ? false : this.agent,
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (stream.headersSent || stream.destroyed) {
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message);
      stream.respond(
        {
          ':status': 502,
          [H_ERROR]: 'target-down',
          [H_DETAIL]: `the tunnel client could not reach ${this.targetUrl}: ${why}`,
        },
        { endStream: true },
      );
      log(`502 (${why})`);
    });
    req.on('upgrade', (res, socket, head) => {
      if (stream.destroyed) {
        socket.destroy();
        return;
      }
      stream.respond(h2ResponseHeaders(200, res.headers));
      if (head.length > 0) stream.write(head);
      log(`101 ${protocol}`);
      void splice(stream, socket);
    });
    let answer: IncomingMessage | undefined;
    req.on('response', (res) => {
      answer = res;
      const status = res.statusCode ?? 502;
      if (stream.destroyed) {
        res.destroy();
        return;
      }
      const noBody = method === 'HEAD' || status === 204 || status === 304;
      stream.respond(h2ResponseHeaders(status, res.headers), { endStream: noBody });
      stream.once('close', () => log(status));
      if (noBody) res.resume();
      else {
        res.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
        res.pipe(stream);
      }
    });
    // The visitor went away (or the server cancelled): stop talking to the target. A stream reset by the
    // server counts as finished on our side, so what decides is whether the target's answer came in whole.
    stream.once('close', () => {
      if (!req.writableFinished || !answer?.complete) req.destroy();
    });
    if (protocol) req.end();
    else stream.pipe(req);
  }
}
