// Keep-alive connections to one upstream (TCP, TLS or unix socket), as Go's Transport keeps them:
// a LIFO list of idle connections (the most recently used is the warmest and the least likely to have been
// closed by the upstream), at most `keepalive` of them, each dropped after IDLE_SOCKET_MS or as soon as the
// upstream closes it or sends anything while idle. Every socket has one set of listeners for its whole
// life, which forwards events to the exchange using it (cheaper than adding and removing them per request).
// Reads land in the process's shared READ_BUFFER (buffers.ts), not in a fresh buffer per read.
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { READ_BUFFER } from './buffers.js';

/**
 * How long an idle pooled connection is kept. Below Node's default server keepAliveTimeout (5 s) so we
 * close first, which avoids most "reused a connection the backend just closed" resets (the rest are retried).
 */
export const IDLE_SOCKET_MS = 4000;

/** What the exchange using a connection is told. Every socket event goes to it while it is attached. */
export interface ConnectionUser {
  /** Bytes received: a view of READ_BUFFER, valid only until this returns (copy what must outlive it). */
  onData(chunk: Buffer): void;
  /** The upstream finished sending (FIN). The socket closes next. */
  onEnd(): void;
  onError(err: NodeJS.ErrnoException): void;
  onClose(): void;
  /** The socket's write buffer emptied (request body backpressure). */
  onDrain(): void;
}

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  /** A unix socket path instead of host and port. */
  readonly socketPath: string | undefined;
  /** Happy Eyeballs (Caddy's fallback_delay): the delay before trying the next address family. */
  readonly fallbackDelayMs: number | undefined;
  /** TLS to the upstream (an `https://` upstream), or undefined for plain TCP. */
  readonly tls?: TlsDialOptions;
}

export interface TlsDialOptions {
  /** SNI and the name the certificate must carry (undefined for an IP address: no SNI, RFC 6066). */
  readonly servername: string | undefined;
  /** Root CAs instead of the system's (`ca_certificates`). */
  readonly ca: string[] | undefined;
  /** Client certificate and key (`tls_client`). */
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  /** `insecure_skip_verify`: any certificate is accepted. */
  readonly rejectUnauthorized: boolean;
}

export class UpstreamConnection {
  readonly socket: Socket;
  user: ConnectionUser | undefined;
  /** Did this connection carry a request before the current one? (Its failure may then be staleness.) */
  reused = false;
  idleSince = 0;
  private readonly pool: ConnectionPool;

  constructor(socket: Socket, pool: ConnectionPool) {
    this.socket = socket;
    this.pool = pool;
    socket.on('end', () => {
      if (this.user) this.user.onEnd();
      else pool.discard(this);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.user) this.user.onError(err);
      else pool.discard(this);
    });
    socket.on('close', () => {
      if (this.user) this.user.onClose();
      else pool.discard(this);
    });
    socket.on('drain', () => this.user?.onDrain());
  }

  /** The socket's `onread` callback: `length` bytes arrived in READ_BUFFER. */
  onRead(length: number): void {
    if (this.user) this.user.onData(READ_BUFFER.subarray(0, length));
    // Bytes nobody asked for: the upstream is out of step with us.
    else this.pool.discard(this);
  }
}

export class ConnectionPool {
  private readonly dialOptions: net.NetConnectOpts;
  private readonly tlsOptions: tls.ConnectionOptions | undefined;
  /** Idle connections, oldest first; taken from the end. */
  private readonly idle: UpstreamConnection[] = [];
  private readonly maxIdle: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(dial: DialOptions, maxIdle: number) {
    this.maxIdle = maxIdle;
    const common = { noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 };
    if (dial.socketPath) this.dialOptions = { ...common, path: dial.socketPath };
    else {
      const tcp: net.TcpNetConnectOpts = { ...common, host: dial.host, port: dial.port };
      if (dial.fallbackDelayMs !== undefined) {
        tcp.autoSelectFamily = true;
        tcp.autoSelectFamilyAttemptTimeout = Math.max(dial.fallbackDelayMs, 10);
      }
      this.dialOptions = tcp;
    }
    const t = dial.tls;
    if (t) {
      this.tlsOptions = {
        servername: t.servername,
        ca: t.ca,
        cert: t.cert,
        key: t.key,
        rejectUnauthorized: t.rejectUnauthorized,
        // We speak HTTP/1.1 only; an upstream that offers h2 by ALPN must not pick it.
        ALPNProtocols: ['http/1.1'],
      };
    }
  }

  /** Does this pool keep connections between requests at all? */
  get keepAlive(): boolean {
    return this.maxIdle > 0;
  }

  /** The most recently used idle connection still fit for use, detached from the idle list. */
  take(): UpstreamConnection | undefined {
    const idle = this.idle;
    const oldest = Date.now() - IDLE_SOCKET_MS;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.idleSince > oldest && !conn.socket.destroyed) return conn;
      conn.socket.destroy();
    }
    return undefined;
  }

  /**
   * A new connection, still connecting (writes are queued until it is up, and for TLS until the handshake
   * is done). Failing to connect (and shake hands) within `timeoutMs` destroys it with ETIMEDOUT, as Caddy's
   * `timeout` (a dial timeout only).
   */
  connect(timeoutMs: number, user: ConnectionUser): UpstreamConnection {
    const onread = {
      buffer: READ_BUFFER,
      // Called only once connected: `conn` is set by then.
      callback: (length: number) => {
        conn.onRead(length);
        return true;
      },
    };
    // tls.connect takes net's `onread` too (the decrypted bytes land in READ_BUFFER); its types omit it.
    const socket = this.tlsOptions
      ? tls.connect({ ...this.dialOptions, ...this.tlsOptions, onread } as unknown as tls.ConnectionOptions)
      : net.connect({ ...this.dialOptions, onread });
    const conn = new UpstreamConnection(socket, this);
    conn.user = user;
    if (timeoutMs > 0) {
      const timer = setTimeout(() => {
        const err: NodeJS.ErrnoException = new Error(`dial timeout after ${timeoutMs}ms`);
        err.code = 'ETIMEDOUT';
        socket.destroy(err);
      }, timeoutMs);
      const stop = () => clearTimeout(timer);
      socket.once(this.tlsOptions ? 'secureConnect' : 'connect', stop);
      socket.once('close', stop);
    }
    return conn;
  }

  /** Gives a connection back after a request: kept idle if it may carry another and there is room. */
  release(conn: UpstreamConnection, reusable: boolean): void {
    conn.user = undefined;
    const socket = conn.socket;
    if (!reusable || this.closed || this.idle.length >= this.maxIdle || socket.destroyed) {
      socket.destroy();
      return;
    }
    // A paused socket would not notice the upstream closing it while idle.
    if (socket.isPaused()) socket.resume();
    conn.reused = true;
    conn.idleSince = Date.now();
    this.idle.push(conn);
    if (!this.sweepTimer) this.scheduleSweep(IDLE_SOCKET_MS);
  }

  /** Drops an idle connection that closed, failed or spoke out of turn. */
  discard(conn: UpstreamConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    conn.socket.destroy();
  }

  /** Destroys the idle connections; those in use close when their request ends. */
  close(): void {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const conn of this.idle.splice(0)) conn.socket.destroy();
  }

  /** Closes idle connections past their time, from the oldest, and comes back for the next one. */
  private scheduleSweep(delayMs: number): void {
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      const oldest = Date.now() - IDLE_SOCKET_MS;
      const idle = this.idle;
      let expired = 0;
      while (expired < idle.length && idle[expired].idleSince <= oldest) expired++;
      for (const conn of idle.splice(0, expired)) conn.socket.destroy();
      if (idle.length > 0) this.scheduleSweep(Math.max(idle[0].idleSince - oldest, 10));
    }, delayMs);
    this.sweepTimer.unref();
  }
}
