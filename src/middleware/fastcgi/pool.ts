// The pool of keep-alive FastCGI connections to one upstream, in one process.
//
// php-fpm gives each connection a worker (a child) for as long as the connection lives; a new connection
// waits in the listen queue until a child is free. So a request must never be written on a connection no
// child has taken yet: it would wait there while a child finishing another request could have run it. A
// new connection therefore first carries only an FCGI_GET_VALUES probe, which the child that takes it
// answers at once. Until then the connection is "pending" and requests wait in the pool's own queue: the
// first connection that is free (a pending one answering, or a busy one whose request ended) runs the
// oldest waiting request. A child is never left idle while a request of this process waits, and no
// connection a child has taken is closed to make room for another.
//
// Other processes (the other workers, another server) share php-fpm's children but cannot see our queue.
// Our idle connections expire after a short time, and a connection older than maxAgeMs is closed when its
// request ends instead of being reused: the child it frees takes the oldest connection in php-fpm's listen
// queue, so another process waiting there gets a child within about maxAgeMs even while we stay busy.
import net from 'node:net';
import { describe, FcgiConnection, type Endpoint } from './connection.js';

/** A pending connection unanswered this long means php-fpm has no free child: dial no more meanwhile. */
const STALL_MS = 10;

export interface PoolOptions {
  /** How long an unused connection is kept. */
  idleTimeoutMs: number;
  /** Unused connections kept at most. */
  maxIdle: number;
  /** A connection this old is closed when its request ends (its child goes to whoever waits longest). */
  maxAgeMs: number;
  /**
   * An application that never answers FCGI_GET_VALUES (none we know of) still gets requests: until some
   * probe of this pool has been answered, a connection unanswered this long is taken as accepted.
   */
  probeGraceMs?: number;
}

/** Thrown when no connection could be had (→ 502). */
export class ConnectError extends Error {
  override readonly cause: unknown;
  constructor(message: string, cause?: unknown) {
    super(message);
    this.name = 'ConnectError';
    this.cause = cause;
  }
}

interface Waiter {
  resolve(conn: FcgiConnection): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class FcgiPool {
  readonly endpoint: Endpoint;
  private readonly opts: Required<PoolOptions>;
  /** Free connections, the most recently used last (reused first: the others expire). */
  private readonly idle: FcgiConnection[] = [];
  /** Requests waiting for a connection, oldest first. */
  private readonly waiters: Waiter[] = [];
  /** Connected, probe sent, no child has answered yet (in php-fpm's listen queue, most likely). */
  private readonly pending = new Map<FcgiConnection, number>();
  /** Sockets still connecting. */
  private dialing = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** php-fpm had no free worker for our last pending connection (see grow()). */
  private saturated = false;
  /** Some probe was answered: this application answers them, so an unanswered one means "queued". */
  private probesAnswered = false;
  /** The connect timeout of the latest request, for dials made when a connection is lost. */
  private dialTimeoutMs = 0;
  private closed = false;
  /** Connections opened so far (for tests and stats). */
  dialed = 0;
  /** Connections handed out and not given back yet. */
  busy = 0;

  constructor(endpoint: Endpoint, opts: PoolOptions) {
    this.endpoint = endpoint;
    this.opts = { probeGraceMs: 1000, ...opts };
  }

  /** Idle connections kept at most from now on (the largest `keepalive` of the configs using the pool). */
  setMaxIdle(maxIdle: number): void {
    this.opts.maxIdle = maxIdle;
    while (this.idle.length > maxIdle) this.idle.shift()!.destroy();
  }

  get idleCount(): number {
    return this.idle.length;
  }

  get pendingCount(): number {
    return this.pending.size + this.dialing;
  }

  get waitingCount(): number {
    return this.waiters.length;
  }

  /**
   * A connection a child has taken, for one request: an idle one, else the first to become free. Rejects
   * with ConnectError when the application cannot be reached, or nothing was free within waitMs (0: no limit).
   */
  acquire(waitMs: number): Promise<FcgiConnection> {
    const conn = this.takeIdle();
    if (conn) return Promise.resolve(conn);
    if (this.closed) return Promise.reject(new ConnectError('FastCGI upstream is shutting down'));
    this.dialTimeoutMs = waitMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (waitMs > 0) waiter.timer = setTimeout(() => this.expire(waiter, waitMs), waitMs);
      this.waiters.push(waiter);
      this.grow();
    });
  }

  /** An idle connection for one request, taken now (give it back with release()), or undefined if none. */
  takeIdle(): FcgiConnection | undefined {
    while (this.idle.length > 0) {
      const conn = this.idle.pop()!;
      if (conn.alive) {
        this.busy++;
        return conn;
      }
      conn.destroy();
    }
    return undefined;
  }

  /** Gives a connection back after its request: to the oldest waiting request, else kept idle. */
  release(conn: FcgiConnection, reusable: boolean): void {
    this.busy--;
    const now = performance.now();
    const old = now - conn.since > this.opts.maxAgeMs;
    if (!reusable || !conn.alive || this.closed || old) {
      conn.destroy();
      this.grow();
      return;
    }
    // A request that ended while its client was slow leaves the socket paused (backpressure); parked so, the
    // next request's answer would never be read.
    conn.resume();
    this.handOut(conn, now);
  }

  /** Closes idle and pending connections and fails waiting requests; busy ones close when they end. */
  close(): void {
    this.closed = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
    for (const conn of [...this.pending.keys()]) conn.destroy();
    this.pending.clear();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new ConnectError('FastCGI upstream is shutting down'));
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** A free connection: to the oldest waiter, else idle (or closed when enough are idle). */
  private handOut(conn: FcgiConnection, now = performance.now()): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      this.busy++;
      waiter.resolve(conn);
      return;
    }
    if (this.idle.length >= this.opts.maxIdle) {
      conn.destroy();
      return;
    }
    conn.idleSince = now;
    this.idle.push(conn);
    if (!this.idleTimer) this.armIdleTimer(this.opts.idleTimeoutMs);
  }

  /**
   * Dials for the waiting requests: one connection each while php-fpm takes them promptly. Once a pending
   * connection has waited STALL_MS unanswered, php-fpm has no free worker: one connection in its listen
   * queue is then enough (the next free worker takes it, and a connection of ours whose request ends serves
   * a waiter anyway), so the others are closed rather than have other clients' connections queue behind
   * them, and no more than one is dialed at a time until one is answered promptly again.
   */
  private grow(): void {
    if (this.closed) return;
    const oldest = this.pending.entries().next().value;
    if (oldest && performance.now() - oldest[1] >= STALL_MS) {
      this.saturated = true;
      for (const conn of this.pending.keys()) {
        if (conn === oldest[0]) continue;
        this.pending.delete(conn);
        conn.destroy();
      }
    }
    const wanted = this.saturated ? Math.min(1, this.waiters.length) : this.waiters.length;
    while (this.pending.size + this.dialing < wanted) this.dial(this.dialTimeoutMs);
  }

  private dial(timeoutMs: number): void {
    this.dialing++;
    this.dialed++;
    this.connect(timeoutMs).then(
      (socket) => {
        this.dialing--;
        if (this.closed) {
          socket.destroy();
          return;
        }
        this.probe(new FcgiConnection(socket));
      },
      (err: ConnectError) => {
        this.dialing--;
        // Each dial was made for a waiting request: the oldest one learns that the application is unreachable.
        const waiter = this.waiters.shift();
        if (waiter) {
          clearTimeout(waiter.timer);
          waiter.reject(err);
        }
      },
    );
  }

  private probe(conn: FcgiConnection): void {
    this.pending.set(conn, performance.now());
    let grace: NodeJS.Timeout | undefined;
    const accepted = () => {
      clearTimeout(grace);
      const since = this.pending.get(conn);
      if (since === undefined || !this.pending.delete(conn)) return;
      this.saturated = performance.now() - since >= STALL_MS;
      this.handOut(conn);
      this.grow();
    };
    conn.socket.once('close', () => {
      clearTimeout(grace);
      this.forget(conn);
    });
    conn.probe(() => {
      this.probesAnswered = true;
      accepted();
    });
    if (!this.probesAnswered) {
      grace = setTimeout(() => {
        if (!this.probesAnswered) accepted();
      }, this.opts.probeGraceMs);
      grace.unref();
    }
  }

  /** A pending or idle connection closed (php-fpm restarted, a child exited): drop it, dial for waiters. */
  private forget(conn: FcgiConnection): void {
    if (this.pending.delete(conn)) {
      this.grow();
      return;
    }
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  private expire(waiter: Waiter, waitMs: number): void {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    waiter.reject(
      new ConnectError(`no connection to FastCGI ${describe(this.endpoint)} was free within ${waitMs} ms`),
    );
  }

  /** One timer for all idle connections: closes those unused for idleTimeoutMs (the oldest are first). */
  private armIdleTimer(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const now = performance.now();
      while (this.idle.length > 0 && now - this.idle[0].idleSince >= this.opts.idleTimeoutMs)
        this.idle.shift()!.destroy();
      if (this.idle.length > 0) this.armIdleTimer(this.opts.idleTimeoutMs - (now - this.idle[0].idleSince));
    }, ms);
    this.idleTimer.unref();
  }

  private connect(timeoutMs: number): Promise<net.Socket> {
    const ep = this.endpoint;
    return new Promise((resolve, reject) => {
      const socket =
        ep.network === 'tcp' ? net.connect({ host: ep.host, port: ep.port }) : net.connect({ path: ep.path });
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              socket.destroy();
              reject(new ConnectError(`connecting to FastCGI ${describe(ep)} timed out`));
            }, timeoutMs)
          : undefined;
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(new ConnectError(`connecting to FastCGI ${describe(ep)} failed: ${err.message}`, err));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(socket);
      });
    });
  }
}

/**
 * One pool per endpoint for the whole process, shared by every rule and site (and by the old and new config
 * across a reload): only a pool that sees every connection to a php-fpm can queue its requests fairly.
 * A config retains the pools it uses in start() and releases them in close(); the last release closes.
 * The pool keeps as many idle connections as the largest `keepalive` among the configs holding it.
 */
const shared = new Map<string, { pool: FcgiPool; keep: number[] }>();

export interface PoolHandle {
  /** The endpoint's pool, once retain() has run. */
  readonly pool: FcgiPool;
  retain(): void;
  release(): void;
}

export function sharedPool(endpoint: Endpoint, opts: PoolOptions): PoolHandle {
  const key = describe(endpoint);
  // Looked up (or made) in retain(), not here: a config that is only built (-validate, a reload that fails
  // further on) leaves nothing in the process-wide map.
  let entry: { pool: FcgiPool; keep: number[] } | undefined;
  let held = false;
  return {
    get pool(): FcgiPool {
      if (!entry) throw new Error(`the FastCGI pool for ${key} is used before its config started`);
      return entry.pool;
    },
    retain() {
      if (held) return;
      held = true;
      entry = shared.get(key);
      if (!entry) shared.set(key, (entry = { pool: new FcgiPool(endpoint, opts), keep: [] }));
      entry.keep.push(opts.maxIdle);
      entry.pool.setMaxIdle(Math.max(...entry.keep));
    },
    release() {
      // The entry stays known to this handle: a request of a closing config may still finish on it.
      const e = entry;
      if (!held || !e) return;
      held = false;
      e.keep.splice(e.keep.indexOf(opts.maxIdle), 1);
      if (e.keep.length > 0) {
        e.pool.setMaxIdle(Math.max(...e.keep));
        return;
      }
      e.pool.close();
      if (shared.get(key) === e) shared.delete(key);
    },
  };
}
