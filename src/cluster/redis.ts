// The one connection to Redis that several nodecaddy instances share (certificates, tunnel names, global
// counters). Built on @redis/client (node-redis), with the settings that keep Redis from ever holding up a
// request: no offline queue (a command while Redis is away fails at once instead of waiting for it), a short
// deadline on every command (also once it was sent), reconnects capped at 2 s. The outage is logged once, and
// its end once; whoever keeps state in Redis re-registers it on `onReady` (a restarted Redis has lost it).
import type * as Redis from '@redis/client';
import { lazyRequire } from '../core/lazy-require.js';
import type { Logger } from '../core/logger.js';
import { recordRedisCall, setRedisUp } from './metrics.js';

/** Longest a command may take, sent or not (scale.md §8.2: with the defaults a command waited 5 s to 60 s). */
export const REDIS_COMMAND_TIMEOUT_MS = 500;
/** Reconnect delays double from 100 ms up to this, with jitter. */
const MAX_RECONNECT_MS = 2_000;

/** A command could not be run: Redis is unreachable or too slow. Callers fall back to what they hold. */
export class RedisUnavailable extends Error {
  constructor(detail: string) {
    super(`redis unavailable: ${detail}`);
  }
}

/** Loaded by the first link: a few MB of heap that a process without -storage redis:// never needs. */
const redis = lazyRequire<typeof Redis>('@redis/client');

type Client = ReturnType<typeof Redis.createClient>;

export interface RedisLinkOptions {
  /** redis://[user:password@]host:port/db, rediss://… (TLS), unix:///path/to/redis.sock. */
  url: string;
  /** Every key lives under the hash tag `{prefix}` (one Redis Cluster slot: multi-key scripts work there). */
  prefix: string;
  log: Logger;
  timeoutMs?: number;
}

export class RedisLink {
  readonly client: Client;
  /** The hash-tagged root of every key: `{nc}`. */
  readonly root: string;
  /** The URL without its password, for logs and the admin endpoint. */
  readonly description: string;
  private readonly log: Logger;
  private subscriber: Client | undefined;
  private readonly readyListeners: (() => void)[] = [];
  private readonly channels = new Map<string, ((message: string) => void)[]>();
  /** Down since (ms), or undefined while reachable; set from the start, until the first 'ready'. */
  private downSince: number | undefined = Date.now();
  private outageLogged = false;
  private closed = false;

  constructor(options: RedisLinkOptions) {
    this.log = options.log;
    this.root = `{${options.prefix}}`;
    this.description = redactUrl(options.url);
    this.client = connect(options.url, options.timeoutMs ?? REDIS_COMMAND_TIMEOUT_MS);
    this.client.on('error', (err: Error) => this.onDown(err));
    this.client.on('ready', () => this.becameReady());
    setRedisUp(false);
    // Not awaited: an instance starts and serves while Redis is away, and the client keeps retrying.
    this.client.connect().catch((err: Error) => this.onDown(err));
  }

  /** A key under the prefix: key('t', site, host) → `{nc}/t/<site>/<host>`. */
  key(...parts: string[]): string {
    return [this.root, ...parts].join('/');
  }

  get up(): boolean {
    return this.downSince === undefined;
  }

  /** Runs commands, timed for the metrics; any failure (Redis away, too slow, an error reply) → RedisUnavailable. */
  async run<T>(what: string, fn: (client: Client) => Promise<T>): Promise<T> {
    if (!this.client.isReady) {
      recordRedisCall(0, false);
      throw new RedisUnavailable(`${what}: not connected`);
    }
    const started = process.hrtime.bigint();
    try {
      const out = await fn(this.client);
      recordRedisCall(Number(process.hrtime.bigint() - started) / 1e9, true);
      return out;
    } catch (err) {
      recordRedisCall(Number(process.hrtime.bigint() - started) / 1e9, false);
      throw new RedisUnavailable(`${what}: ${(err as Error).message}`);
    }
  }

  /**
   * `listener` runs each time Redis becomes reachable (the first time, and after every outage): re-register
   * what lives in Redis, rescan what may have been missed.
   */
  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
    if (this.up) queueMicrotask(listener);
  }

  /** Delivers messages of `channel` (fire and forget: messages sent while disconnected are lost; see onReady). */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    const full = this.key('events', channel);
    const listeners = this.channels.get(full);
    if (listeners) {
      listeners.push(listener);
      return;
    }
    this.channels.set(full, [listener]);
    if (!this.subscriber) {
      this.subscriber = this.client.duplicate();
      this.subscriber.on('error', () => undefined);
      this.subscriber.connect().catch(() => undefined);
    }
    const deliver = (message: string) => {
      for (const l of this.channels.get(full) ?? []) l(message);
    };
    // node-redis subscribes again after a reconnect by itself; a failure now is retried the same way.
    await this.subscriber.subscribe(full, deliver).catch(() => undefined);
  }

  /** Tells every instance (best effort: false when Redis is away). */
  async publish(channel: string, message: string): Promise<boolean> {
    try {
      await this.run('publish', (c) => c.publish(this.key('events', channel), message));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of [this.client, this.subscriber]) {
      if (c?.isOpen) await c.close().catch(() => c.destroy());
    }
  }

  private onDown(err: Error): void {
    if (this.closed) return;
    this.downSince ??= Date.now();
    setRedisUp(false);
    if (this.outageLogged) return;
    this.outageLogged = true;
    this.log.warn(
      { redis: this.description, err: err.message },
      'redis unreachable: serving what this instance holds, retrying',
    );
  }

  private becameReady(): void {
    const since = this.downSince;
    this.downSince = undefined;
    setRedisUp(true);
    if (this.outageLogged) {
      this.log.info(
        { redis: this.description, seconds: since && (Date.now() - since) / 1000 },
        'redis reachable again',
      );
      this.outageLogged = false;
    }
    for (const l of this.readyListeners) l();
  }
}

function connect(url: string, timeoutMs: number): Client {
  const unix = url.startsWith('unix://') ? new URL(url) : undefined;
  return redis().createClient({
    ...(!unix && { url: url.replace(/\?.*$/, '') }),
    disableOfflineQueue: true,
    commandOptions: { timeout: timeoutMs, rejectInFlight: true },
    socket: {
      ...(unix && { path: unix.pathname }),
      connectTimeout: 2_000,
      reconnectStrategy: (retries: number) =>
        Math.min(100 * 2 ** Math.min(retries, 5), MAX_RECONNECT_MS) * (0.8 + Math.random() * 0.4),
    },
  });
}

/** The URL with its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(
    /^([a-z+]+:\/\/)([^@/]*:)?[^@/]*@/i,
    (_m, scheme: string, user: string | undefined) => `${scheme}${user ?? ''}***@`,
  );
}
