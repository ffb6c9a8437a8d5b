// Representations derived from a cached file body (gzip and brotli copies made by the gzip directive), kept
// exactly as long as the file cache keeps that body. The cache's bodies are immutable Buffers and a new
// version of a file is a new Buffer, so a Buffer's identity is a version: a copy keyed by it can never be
// stale. The file cache adopts a body when it stores it and releases it when it drops it (change event,
// eviction, clear); from then on nothing new is kept for it, and what was kept goes with the last reference
// to the Buffer (WeakMap). The copies are charged to the owning cache's memory budget.

/** The file cache's side: a memory budget that derived copies are charged to. */
export interface BodyOwner {
  /** Takes `bytes` from the budget; false (nothing taken) when they do not fit. */
  charge(bytes: number): boolean;
}

interface CachedBody {
  readonly owner: BodyOwner;
  /** Derived copies by key (e.g. `gzip/6`); a handful per body at most (encodings × levels). */
  readonly derived: Map<string, Buffer>;
  /** Bytes charged to the owner for this body's derived copies. */
  bytes: number;
}

const bodies = new WeakMap<Buffer, CachedBody>();

/** Called by the file cache when `body` becomes the cached content of a file. */
export function adoptBody(body: Buffer, owner: BodyOwner): void {
  bodies.set(body, { owner, derived: new Map(), bytes: 0 });
}

/**
 * Called by the file cache when it drops `body`: nothing derived is kept for it any more (requests still
 * holding it compress as for any other body). Returns the bytes its derived copies had been charged.
 */
export function releaseBody(body: Buffer): number {
  const entry = bodies.get(body);
  if (!entry) return 0;
  bodies.delete(body);
  return entry.bytes;
}

/** Whether `body` is a file body the file cache holds now (and so may have derived copies). */
export function isCachedBody(body: unknown): body is Buffer {
  return Buffer.isBuffer(body) && bodies.has(body);
}

/** The copy of `body` derived under `key`, if one was kept. */
export function derivedOf(body: Buffer, key: string): Buffer | undefined {
  return bodies.get(body)?.derived.get(key);
}

/** Keeps `value` as `body`'s copy under `key` if the body is still cached and the budget allows. */
export function keepDerived(body: Buffer, key: string, value: Buffer): boolean {
  const entry = bodies.get(body);
  if (!entry || entry.derived.has(key) || !entry.owner.charge(value.length)) return false;
  entry.derived.set(key, value);
  entry.bytes += value.length;
  return true;
}
