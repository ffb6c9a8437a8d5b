// The Storage of one folder (nodecaddy's data folder, `-data`): a key is a file under it, written whole (a
// temporary file in the same folder, renamed over the old one), private to the user (files 0600, folders 0700).
//
// Locks are certmagic v2's "active" file locks: `locks/<name>.lock` is created exclusively and its holder
// rewrites the `updated` time in it every LOCK_REFRESH_MS. A lock whose `updated` is older than LOCK_STALE_MS
// belongs to a holder that died (a crash, a killed instance) and is taken over; a file left empty or half
// written by a crash (certmagic#232, caddy#4448) is judged by its mtime instead. Nobody waits hours for a lock
// file left behind (Caddy v1's two-hour rule, caddy#2561).
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { keepAlive, LOCK_STALE_MS, safeKeyPart, type Storage, type StorageKey } from './storage.js';

/** How often a waiter looks at a lock it wants (a little jitter keeps waiters from moving in step). */
const LOCK_POLL_MS = 250;
const LOCK_POLL_JITTER_MS = 50;

/** A temporary file of an atomic write: `.<name>.<16 hex>.tmp`, never listed as a key. */
const TEMP_FILE = /^\..+\.[0-9a-f]{16}\.tmp$/;

/** What a lock file holds. */
interface LockRecord {
  readonly created: string;
  readonly updated: string;
  readonly pid: number;
  readonly host: string;
  /** Random: the holder knows the file is still its own. */
  readonly id: string;
}

/** Lock files this process holds (file -> id), removed at exit if still held. */
const heldLocks = new Map<string, string>();
let exitCleanupRegistered = false;

function removeHeldLocksAtExit(): void {
  for (const [file, id] of heldLocks) {
    try {
      if (parseLock(readFileSync(file, 'utf8'))?.id === id) unlinkSync(file);
    } catch {
      // Best effort: a lock this process cannot remove goes stale within LOCK_STALE_MS anyway.
    }
  }
}

function abortError(name: string, signal: AbortSignal): Error {
  const err = new Error(`gave up waiting for the lock ${JSON.stringify(name)}`, { cause: signal.reason });
  err.name = 'AbortError';
  return Object.assign(err, { code: 'ABORT_ERR' });
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function parseLock(text: string): LockRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockRecord> | null;
    if (v && typeof v === 'object' && typeof v.updated === 'string' && !Number.isNaN(Date.parse(v.updated)))
      return v as LockRecord;
  } catch {
    // not JSON: judged by mtime
  }
  return undefined;
}

/** Waits ms, or rejects at once when the signal aborts. */
function pause(ms: number, name: string, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(name, signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(name, signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Why a key is refused, or undefined for a good key. */
export function keyProblem(key: string): string | undefined {
  if (key === '') return 'empty';
  if (key.startsWith('/')) return 'an absolute path';
  if (key.includes('\\')) return 'contains a backslash';
  if (key.includes('\0')) return 'contains a NUL byte';
  const parts = key.split('/');
  if (parts.includes('..')) return 'contains ..';
  if (parts.some((p) => p === '' || p === '.')) return 'has an empty or "." part';
  return undefined;
}

export class FileStorage implements Storage {
  readonly root: string;
  readonly description: string;

  constructor(folder: string) {
    this.root = path.resolve(folder);
    this.description = `file://${this.root}`;
  }

  /** The file of a key; refuses keys that could leave the folder or mean different files on other systems. */
  private fileOf(key: StorageKey, allowRoot = false): string {
    if (typeof key !== 'string') throw new TypeError('storage key: not a string');
    if (key === '' && allowRoot) return this.root;
    const why = keyProblem(key);
    if (why) throw new Error(`storage key ${JSON.stringify(key)} refused: ${why}`);
    return path.join(this.root, ...key.split('/'));
  }

  async load(key: StorageKey): Promise<Buffer | undefined> {
    const file = this.fileOf(key);
    try {
      return await readFile(file);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async store(key: StorageKey, value: Buffer | string): Promise<void> {
    const file = this.fileOf(key);
    const dir = path.dirname(file);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
    const fh = await open(temp, 'wx', 0o600);
    try {
      try {
        await fh.writeFile(value);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  async delete(key: StorageKey): Promise<void> {
    // A folder goes with everything in it (certmagic's Delete), e.g. a site's folder.
    await rm(this.fileOf(key), { recursive: true, force: true });
  }

  async list(prefix: StorageKey): Promise<StorageKey[]> {
    const base = prefix.replace(/\/+$/, '');
    const dir = this.fileOf(base, true);
    const keys: StorageKey[] = [];
    const walk = async (folder: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(folder, { withFileTypes: true });
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
        throw err;
      }
      for (const e of entries) {
        const key = keyPrefix === '' ? e.name : `${keyPrefix}/${e.name}`;
        if (e.isDirectory()) await walk(path.join(folder, e.name), key);
        else if (e.isFile() && !TEMP_FILE.test(e.name)) keys.push(key);
      }
    };
    await walk(dir, base);
    return keys.sort();
  }

  async lock(name: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const part = safeKeyPart(name);
    if (part === '' || part === '.') throw new Error(`lock name ${JSON.stringify(name)} refused: empty`);
    const file = path.join(this.root, 'locks', `${part}.lock`);
    const id = randomBytes(12).toString('hex');
    for (;;) {
      if (signal?.aborted) throw abortError(name, signal);
      if (await this.tryCreateLock(file, id)) return this.holdLock(file, id);
      if (!(await this.takeOverIfStale(file)))
        await pause(LOCK_POLL_MS + Math.random() * LOCK_POLL_JITTER_MS, name, signal);
    }
  }

  /** Creates the lock file exclusively; false when another holder has it. */
  private async tryCreateLock(file: string, id: string): Promise<boolean> {
    const now = new Date().toISOString();
    const record: LockRecord = { created: now, updated: now, pid: process.pid, host: os.hostname(), id };
    let fh;
    try {
      fh = await open(file, 'wx', 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST') return false;
      if (errno(err) !== 'ENOENT') throw err;
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      return this.tryCreateLock(file, id);
    }
    try {
      await fh.writeFile(JSON.stringify(record));
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(file).catch(() => {});
      throw err;
    }
    await fh.close();
    return true;
  }

  /**
   * Whether the lock file is stale: its `updated` older than LOCK_STALE_MS, or, when it holds no record
   * (empty, half written, garbage), its mtime. Undefined when the file is gone.
   */
  private async isStale(file: string): Promise<boolean | undefined> {
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      // Unreadable: judged by mtime.
    }
    const record = text === undefined ? undefined : parseLock(text);
    if (record) return Date.now() - Date.parse(record.updated) > LOCK_STALE_MS;
    try {
      return Date.now() - (await stat(file)).mtimeMs > LOCK_STALE_MS;
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Removes a stale lock file so that the next exclusive create can win; true when the file is gone (taken
   * over, or released meanwhile). Two waiters may judge the same file stale at once, and the second must not
   * remove the live lock the first has created meanwhile: the removal happens under a second lock
   * (`<lock>.takeover`, created exclusively), and the file is judged again once that is held. A takeover lock
   * left by a process that died in those few milliseconds is itself removed when older than LOCK_STALE_MS.
   */
  private async takeOverIfStale(file: string): Promise<boolean> {
    const stale = await this.isStale(file);
    if (stale === undefined) return true;
    if (!stale) return false;
    const takeover = `${file}.takeover`;
    let fh;
    try {
      fh = await open(takeover, 'wx', 0o600);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      const age = await stat(takeover).then(
        (st) => Date.now() - st.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) await unlink(takeover).catch(() => {});
      return false;
    }
    try {
      await fh.close();
      const still = await this.isStale(file);
      if (still === undefined) return true;
      if (!still) return false;
      await unlink(file).catch((err: unknown) => {
        if (errno(err) !== 'ENOENT') throw err;
      });
      return true;
    } finally {
      await unlink(takeover).catch(() => {});
    }
  }

  /** Keeps the lock alive until released; the release function removes the file only if it is still ours. */
  private holdLock(file: string, id: string): () => Promise<void> {
    heldLocks.set(file, id);
    if (!exitCleanupRegistered) {
      exitCleanupRegistered = true;
      process.on('exit', removeHeldLocksAtExit);
    }
    return keepAlive(
      () => refreshLock(file, id),
      async () => {
        heldLocks.delete(file);
        try {
          if (parseLock(await readFile(file, 'utf8'))?.id === id) await unlink(file);
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw err;
        }
      },
    );
  }
}

/**
 * Rewrites `updated` in place (not by rename: a rename would bring back a lock file that was taken over). The
 * new text is never shorter than the old (same ISO time length), so a reader never sees the file empty.
 */
async function refreshLock(file: string, id: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const record = parseLock((await fh.readFile()).toString('utf8'));
    if (record?.id !== id) return; // taken over: no longer ours
    const text = Buffer.from(JSON.stringify({ ...record, updated: new Date().toISOString() }));
    await fh.write(text, 0, text.length, 0);
    await fh.truncate(text.length);
  } finally {
    await fh.close();
  }
}
