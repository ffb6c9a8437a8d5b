// One FastCGI connection (one request at a time, FCGI_KEEP_CONN) and the pool of them per upstream.
//
// php-fpm binds a worker to a connection for as long as the connection lives, and new connections wait in
// the listen backlog until a worker is free. A pool that kept every finished connection could therefore
// starve its own fresh connections (all workers parked on our idle sockets: nginx with `keepalive` above
// pm.max_children wedges exactly so). So when a fresh connection has had no answer for STARVING_MS, the
// pool closes its idle connections and, until that connection is answered, closes finished ones instead of
// keeping them: each close frees a worker for the waiting connection. Idle connections also expire.
import net from 'node:net';
import {
  decodeEndRequest,
  encodeBeginRequest,
  encodeRecord,
  RecordParser,
  RecordType,
  type ProtocolStatus,
} from './protocol.js';

/** The request id we use: one request per connection at a time, so always 1. */
const REQUEST_ID = 1;

/** A fresh connection unanswered this long is presumed waiting for a php-fpm worker. */
const STARVING_MS = 50;

export type Endpoint = { network: 'tcp'; host: string; port: number } | { network: 'unix'; path: string };

export interface ExchangeHandlers {
  onStdout(data: Buffer): void;
  onStderr(data: Buffer): void;
  onEnd(appStatus: number, protocolStatus: ProtocolStatus): void;
  /** The connection failed or closed before END_REQUEST. */
  onError(err: Error): void;
}

export class FcgiConnection {
  readonly socket: net.Socket;
  /** Requests completed on this connection (0 while its first one runs). */
  completed = 0;
  /** Has any byte of the current request's answer arrived? */
  answered = false;
  /** When the connection was made (performance.now()). */
  readonly since = performance.now();
  private readonly parser = new RecordParser();
  private handlers: ExchangeHandlers | undefined;
  private broken = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () =>
      this.fail(new Error('FastCGI connection closed before the end of the response')),
    );
  }

  /** Usable for another request. */
  get alive(): boolean {
    return !this.broken && !this.socket.destroyed && this.socket.writable;
  }

  /**
   * Starts a request: BEGIN_REQUEST, the encoded PARAMS stream and, for a request without a body, the end of
   * STDIN, in one write (a second one would wake the php-fpm worker, already waiting for STDIN, once more).
   */
  begin(params: Buffer, handlers: ExchangeHandlers, noBody = false): void {
    this.handlers = handlers;
    this.answered = false;
    const parts = [encodeBeginRequest(REQUEST_ID), params];
    if (noBody) parts.push(encodeRecord(RecordType.Stdin, REQUEST_ID));
    this.socket.write(Buffer.concat(parts));
  }

  /** Writes body bytes as STDIN records; false when the socket wants a 'drain' first. */
  writeStdin(chunk: Buffer): boolean {
    const parts: Buffer[] = [];
    for (let off = 0; off < chunk.length; off += 0xffff) {
      parts.push(encodeRecord(RecordType.Stdin, REQUEST_ID, chunk.subarray(off, off + 0xffff)));
    }
    return this.socket.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  /** The empty STDIN record that ends the body. */
  endStdin(): void {
    this.socket.write(encodeRecord(RecordType.Stdin, REQUEST_ID));
  }

  /** Stops reading (client backpressure); the kernel then pushes back on php-fpm. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.broken = true;
    this.handlers = undefined;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.answered = true;
    try {
      this.parser.push(chunk, (rec) => {
        const h = this.handlers;
        if (!h || rec.requestId !== REQUEST_ID) return; // management records or a late record: not ours
        switch (rec.type as RecordType) {
          case RecordType.Stdout:
            if (rec.content.length > 0) h.onStdout(rec.content);
            break;
          case RecordType.Stderr:
            if (rec.content.length > 0) h.onStderr(rec.content);
            break;
          case RecordType.EndRequest: {
            this.handlers = undefined;
            this.completed++;
            const { appStatus, protocolStatus } = decodeEndRequest(rec.content);
            h.onEnd(appStatus, protocolStatus);
            break;
          }
          default:
            break;
        }
      });
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
    }
  }

  private fail(err: Error): void {
    this.broken = true;
    const h = this.handlers;
    this.handlers = undefined;
    h?.onError(err);
  }
}

export interface PoolOptions {
  /** How long an unused connection is kept. */
  idleTimeoutMs: number;
  /** Unused connections kept at most. */
  maxIdle: number;
}

/** Thrown when a connection cannot be made (→ 502). */
export class ConnectError extends Error {
  override readonly cause: unknown;
  constructor(message: string, cause?: unknown) {
    super(message);
    this.name = 'ConnectError';
    this.cause = cause;
  }
}

export class FcgiPool {
  readonly endpoint: Endpoint;
  private readonly opts: PoolOptions;
  private readonly idle: { conn: FcgiConnection; timer: NodeJS.Timeout }[] = [];
  /** Connections in use that have not finished a request yet (maybe still in php-fpm's backlog). */
  private readonly fresh = new Set<FcgiConnection>();
  private closed = false;
  /** Connections opened so far (for tests and stats). */
  dialed = 0;

  constructor(endpoint: Endpoint, opts: PoolOptions) {
    this.endpoint = endpoint;
    this.opts = opts;
  }

  /** A connection for one request: an idle one if there is one, else a new one within connect_timeout. */
  async acquire(connectTimeoutMs: number): Promise<FcgiConnection> {
    while (this.idle.length > 0) {
      const { conn, timer } = this.idle.pop()!;
      clearTimeout(timer);
      conn.socket.removeAllListeners('end');
      if (conn.alive) return conn;
      conn.destroy();
    }
    if (this.closed) throw new ConnectError('FastCGI upstream is shutting down');
    const conn = new FcgiConnection(await this.dial(connectTimeoutMs));
    this.fresh.add(conn);
    const check = setTimeout(() => {
      if (this.fresh.has(conn) && !conn.answered) this.closeIdle();
    }, STARVING_MS);
    check.unref();
    conn.socket.once('data', () => clearTimeout(check));
    conn.socket.once('close', () => clearTimeout(check));
    return conn;
  }

  /** Gives a connection back after its request: kept when it is clean and no fresh connection waits. */
  release(conn: FcgiConnection, reusable: boolean): void {
    this.fresh.delete(conn);
    const now = performance.now();
    let starving = false;
    for (const c of this.fresh) if (!c.answered && now - c.since >= STARVING_MS) starving = true;
    if (!reusable || !conn.alive || this.closed || starving || this.idle.length >= this.opts.maxIdle) {
      conn.destroy();
      return;
    }
    // A request that ended while its client was slow leaves the socket paused (backpressure); parked so, the
    // next request's answer would never be read and php-fpm's 'end' never seen.
    conn.resume();
    const entry = {
      conn,
      timer: setTimeout(() => this.drop(entry), this.opts.idleTimeoutMs),
    };
    entry.timer.unref();
    // php-fpm closes a connection whose worker exits (pm.max_requests, idle timeout): forget it then.
    conn.socket.once('end', () => this.drop(entry));
    this.idle.push(entry);
  }

  /** Closes every idle connection; connections in use close when their request ends. */
  close(): void {
    this.closed = true;
    this.closeIdle();
  }

  private closeIdle(): void {
    for (const { conn, timer } of this.idle.splice(0)) {
      clearTimeout(timer);
      conn.destroy();
    }
  }

  get idleCount(): number {
    return this.idle.length;
  }

  private drop(entry: { conn: FcgiConnection; timer: NodeJS.Timeout }): void {
    const i = this.idle.indexOf(entry);
    if (i >= 0) this.idle.splice(i, 1);
    clearTimeout(entry.timer);
    entry.conn.destroy();
  }

  private dial(connectTimeoutMs: number): Promise<net.Socket> {
    const ep = this.endpoint;
    return new Promise((resolve, reject) => {
      const socket =
        ep.network === 'tcp' ? net.connect({ host: ep.host, port: ep.port }) : net.connect({ path: ep.path });
      this.dialed++;
      const timer =
        connectTimeoutMs > 0
          ? setTimeout(() => {
              socket.destroy();
              reject(new ConnectError(`connecting to FastCGI ${describe(ep)} timed out`));
            }, connectTimeoutMs)
          : undefined;
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(socket);
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(new ConnectError(`connecting to FastCGI ${describe(ep)} failed: ${err.message}`, err));
      };
      socket.once('error', onError);
    });
  }
}

/**
 * One pool per endpoint for the whole process, shared by every rule and site (and by the old and new config
 * across a reload): the starvation rule above only works if one pool sees every connection to a php-fpm.
 * A config retains the pools it uses in start() and releases them in close(); the last release closes.
 */
const shared = new Map<string, { pool: FcgiPool; refs: number }>();

export interface PoolHandle {
  readonly pool: FcgiPool;
  retain(): void;
  release(): void;
}

export function sharedPool(endpoint: Endpoint, opts: PoolOptions): PoolHandle {
  const key = describe(endpoint);
  let entry = shared.get(key);
  if (!entry) shared.set(key, (entry = { pool: new FcgiPool(endpoint, opts), refs: 0 }));
  const e = entry;
  let held = false;
  return {
    pool: e.pool,
    retain() {
      if (held) return;
      held = true;
      e.refs++;
    },
    release() {
      if (!held) return;
      held = false;
      if (--e.refs > 0) return;
      e.pool.close();
      if (shared.get(key) === e) shared.delete(key);
    },
  };
}

export function describe(ep: Endpoint): string {
  return ep.network === 'tcp' ? `${ep.host}:${ep.port}` : `unix:${ep.path}`;
}
