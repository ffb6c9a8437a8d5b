// The Storage that several nodecaddy instances share (scale.md §6.2): certificates, keys, accounts, challenges and
// order locks in one Redis, under the link's hash tag (one Redis Cluster slot, so every script may touch any key):
//   {nc}/f/<key>       hash {v: the value sealed with AES-256-GCM (base64), m: when it was stored (ms)}
//   {nc}/idx           sorted set of every key at score 0: list() is one ZRANGEBYLEX, written with the value
//                      in one MULTI (store) or one script (delete), so there is no index to repair
//   {nc}/lock/<name>   an order lock: SET NX PX with a random token, renewed by compare-and-PEXPIRE, released
//                      by compare-and-DEL, then an `unlock` message wakes the waiters (who poll every second too)
// Every call fails at once with RedisUnavailable while Redis is away (the link has no offline queue): the
// certificate manager retries with backoff, and what the servers hold keeps serving.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import type { RedisLink } from '../cluster/redis.js';
import { keyProblem } from './file-storage.js';
import { Sealer } from './sealed.js';
import { keepAlive, LOCK_STALE_MS, safeKeyPart, type Storage, type StorageKey } from './storage.js';

/** A waiter looks at a lock it wants at least this often (the unlock message usually wakes it sooner). */
const LOCK_POLL_MS = 1_000;
/** The pub/sub channel of released locks (the message is the lock's key). */
const UNLOCK_CHANNEL = 'unlock';

/** Removes a key and everything under it, value and index together. */
const DELETE_SCRIPT = `
local members = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[1] .. '/', '(' .. ARGV[1] .. '/\\255')
table.insert(members, ARGV[1])
for _, m in ipairs(members) do
  redis.call('DEL', ARGV[2] .. m)
  redis.call('ZREM', KEYS[1], m)
end
return #members`;

/**
 * Keeps a held lock alive: extends it while it is ours; takes it again when it is gone (it expired while Redis
 * was unreachable, or a restarted Redis lost it) and nobody else took it. 0: someone else holds it now.
 */
const RENEW_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;

const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

function abortError(name: string, signal: AbortSignal): Error {
  const err = new Error(`gave up waiting for the lock ${JSON.stringify(name)}`, { cause: signal.reason });
  err.name = 'AbortError';
  return Object.assign(err, { code: 'ABORT_ERR' });
}

export interface RedisStorageOptions {
  readonly link: RedisLink;
  /** -cluster-secret: values are sealed under a key derived from it. */
  readonly secret: string;
  readonly log: Logger;
}

export class RedisStorage implements Storage {
  readonly description: string;
  private readonly link: RedisLink;
  private readonly sealer: Sealer;
  private readonly log: Logger;
  private readonly index: string;
  private readonly filePrefix: string;
  /** Loads running now, by key: a burst of handshakes for one name reads Redis once (certmagic#185). */
  private readonly loading = new Map<string, Promise<Buffer | undefined>>();
  /** Waiters by lock key: an unlock message wakes them. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private subscribed: Promise<void> | undefined;

  constructor(options: RedisStorageOptions) {
    this.link = options.link;
    this.log = options.log;
    this.description = options.link.description;
    this.sealer = new Sealer(options.secret, options.link.root);
    this.index = options.link.key('idx');
    this.filePrefix = `${options.link.key('f')}/`;
  }

  private checked(key: StorageKey): StorageKey {
    if (typeof key !== 'string') throw new TypeError('storage key: not a string');
    const why = keyProblem(key);
    if (why) throw new Error(`storage key ${JSON.stringify(key)} refused: ${why}`);
    return key;
  }

  async load(key: StorageKey): Promise<Buffer | undefined> {
    this.checked(key);
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.link
        .run('storage load', (c) => c.hGet(this.filePrefix + key, 'v'))
        .then((v) => (v === null ? undefined : this.sealer.open(key, Buffer.from(v, 'base64'))))
        .finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  async store(key: StorageKey, value: Buffer | string): Promise<void> {
    this.checked(key);
    const sealed = this.sealer.seal(key, value).toString('base64');
    await this.link.run('storage store', (c) =>
      c
        .multi()
        .hSet(this.filePrefix + key, { v: sealed, m: String(Date.now()) })
        .zAdd(this.index, { score: 0, value: key })
        .exec(),
    );
  }

  async delete(key: StorageKey): Promise<void> {
    this.checked(key);
    await this.link.run('storage delete', (c) =>
      c.eval(DELETE_SCRIPT, { keys: [this.index], arguments: [key, this.filePrefix] }),
    );
  }

  async list(prefix: StorageKey): Promise<StorageKey[]> {
    const base = prefix.replace(/\/+$/, '');
    if (base !== '') this.checked(base);
    const keys = await this.link.run('storage list', (c) =>
      base === ''
        ? c.zRange(this.index, '-', '+', { BY: 'LEX' })
        : c.zRangeByLex(this.index, `[${base}/`, `(${base}/\xff`),
    );
    return keys.map(String).sort();
  }

  /** When the key was last stored (ms), or undefined when it is absent. */
  async modified(key: StorageKey): Promise<number | undefined> {
    this.checked(key);
    const m = await this.link.run('storage stat', (c) => c.hGet(this.filePrefix + key, 'm'));
    return m === null ? undefined : Number(m);
  }

  async lock(name: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const part = safeKeyPart(name);
    if (part === '' || part === '.') throw new Error(`lock name ${JSON.stringify(name)} refused: empty`);
    const key = this.link.key('lock', part);
    const token = randomBytes(16).toString('hex');
    for (;;) {
      if (signal?.aborted) throw abortError(name, signal);
      const taken = await this.link.run('lock', (c) =>
        c.set(key, token, { condition: 'NX', expiration: { type: 'PX', value: LOCK_STALE_MS } }),
      );
      if (taken === 'OK') return this.hold(name, key, token);
      await this.waitForUnlock(name, key, signal);
    }
  }

  /** Resolves at the unlock message for `key`, or after LOCK_POLL_MS; rejects when the signal aborts. */
  private async waitForUnlock(name: string, key: string, signal: AbortSignal | undefined): Promise<void> {
    this.subscribed ??= this.link.subscribe(UNLOCK_CHANNEL, (message) => {
      for (const wake of this.waiters.get(message) ?? []) wake();
    });
    await this.subscribed;
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(key);
      };
      const wake = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(abortError(name, signal as AbortSignal));
      };
      const timer = setTimeout(wake, LOCK_POLL_MS * (0.9 + Math.random() * 0.2));
      set.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Keeps the lock alive until released. A renewal that fails (Redis away) is tried again at the next tick
   * instead of giving up (pberkel/caddy-storage-redis v1.7.1's fix): the lock outlives a short outage.
   */
  private hold(name: string, key: string, token: string): () => Promise<void> {
    let lostLogged = false;
    const renew = async () => {
      const r = await this.link.run('lock renew', (c) =>
        c.eval(RENEW_SCRIPT, { keys: [key], arguments: [token, String(LOCK_STALE_MS)] }),
      );
      if (r === 0 && !lostLogged) {
        lostLogged = true;
        this.log.warn({ lock: name }, 'lock taken over by another instance (it expired while held)');
      }
    };
    return keepAlive(renew, async () => {
      try {
        await this.link.run('unlock', (c) => c.eval(RELEASE_SCRIPT, { keys: [key], arguments: [token] }));
        await this.link.publish(UNLOCK_CHANNEL, key);
      } catch {
        // Redis away: the lock expires within LOCK_STALE_MS, and the work it guarded is done.
      }
    });
  }
}
