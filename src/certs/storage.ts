// Where automatic HTTPS keeps what must outlive the process: ACME account keys, certificates and their keys,
// challenge records, and the locks that keep two processes (or two instances sharing the storage) from ordering
// the same certificate at once. One small interface (certmagic's Storage and Locker), so that a Redis-backed
// storage for several machines can stand in for the file storage of the data folder.

/** A storage key: `/`-separated parts of safe characters (see safeKeyPart), never `..`. */
export type StorageKey = string;

export interface Storage {
  /** What it is, for the log (`file:///var/lib/nodecaddy`). */
  readonly description: string;
  /** The value, or undefined when there is none. */
  load(key: StorageKey): Promise<Buffer | undefined>;
  /** Writes the value whole (a reader never sees half of it); private to the user (files 0600). */
  store(key: StorageKey, value: Buffer | string): Promise<void>;
  /** Removes the key; no error when it is absent. */
  delete(key: StorageKey): Promise<void>;
  /** Every key under the prefix (recursive), e.g. list('acme/ca.example/sites'). */
  list(prefix: StorageKey): Promise<StorageKey[]>;
  /**
   * Takes the lock `name`, waiting while another holder keeps it alive. A holder that died (a crash, a
   * killed instance) is noticed within LOCK_STALE_MS and its lock is taken over; nobody waits hours for a
   * lock file left behind. Resolves with the function that releases it. The signal gives up waiting.
   */
  lock(name: string, signal?: AbortSignal): Promise<() => Promise<void>>;
}

/** A lock whose holder has not shown a sign of life for this long is stale (certmagic v2's 10 s). */
export const LOCK_STALE_MS = 10_000;
/** How often a holder renews its lock. */
export const LOCK_REFRESH_MS = 3_000;

/**
 * A name as one part of a key (certmagic's Safe(), close to it): lower case, `*` as `wildcard_`, anything but
 * letters, digits, `.`, `-`, `_` and `@` as `_`, and no `..`.
 */
export function safeKeyPart(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/\*/g, 'wildcard_')
    .replace(/[^a-z0-9._@-]/g, '_')
    .replace(/\.\.+/g, '.');
}

/**
 * A held lock: `renew` runs every LOCK_REFRESH_MS (one at a time; a failure waits for the next tick) until the
 * returned function is called, which stops renewing, lets a running renewal finish, then runs `release`,
 * once however often it is called.
 */
export function keepAlive(renew: () => Promise<void>, release: () => Promise<void>): () => Promise<void> {
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    renewing = renewing.then(renew).catch(() => undefined);
  }, LOCK_REFRESH_MS);
  timer.unref();
  let released: Promise<void> | undefined;
  return () =>
    (released ??= (async () => {
      clearInterval(timer);
      await renewing;
      await release();
    })());
}
