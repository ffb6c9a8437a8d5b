// `tls internal`'s local certificate authority (Caddy 2's): one root CA, made on first use and kept in the data
// folder (`<data>/pki/authorities/local/root.crt` and `root.key`, the key 0600), that signs short-lived leaves
// for the sites' names. A person trusts the root once; every leaf then verifies.
//
// Several processes (cluster workers, two instances on one folder) may want the root at the same moment:
// whoever creates the lock directory makes it, the others wait for it. A lock left by a process that died is
// taken over after STALE_LOCK_MS.
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { rootCa, type PemPair } from './x509.js';

/** The root is valid for ten years (as Caddy 2's). */
const ROOT_VALID_MS = 10 * 365 * 24 * 3600 * 1000;
const STALE_LOCK_MS = 10_000;
const WAIT_STEP_MS = 25;

export function localCaDir(dataDir: string): string {
  return path.join(dataDir, 'pki', 'authorities', 'local');
}

/** Where the root certificate a person should trust is. */
export function localRootFile(dataDir: string): string {
  return path.join(localCaDir(dataDir), 'root.crt');
}

/** Processes share the root; this process reads it once. */
const loaded = new Map<string, Promise<PemPair>>();

/** The local root CA of this data folder, made if there is none yet. */
export function localCa(dataDir: string): Promise<PemPair> {
  let ca = loaded.get(dataDir);
  if (!ca) {
    ca = loadOrCreate(localCaDir(dataDir));
    loaded.set(dataDir, ca);
    ca.catch(() => loaded.delete(dataDir));
  }
  return ca;
}

async function read(dir: string): Promise<PemPair | undefined> {
  try {
    const [cert, key] = await Promise.all([
      readFile(path.join(dir, 'root.crt'), 'utf8'),
      readFile(path.join(dir, 'root.key'), 'utf8'),
    ]);
    return { cert, key };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function loadOrCreate(dir: string): Promise<PemPair> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lock = path.join(dir, '.lock');
  for (;;) {
    const existing = await read(dir);
    if (existing) return existing;
    try {
      await mkdir(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Someone else is making it; take the lock over only if it is stale.
      const since = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (since > STALE_LOCK_MS) await rm(lock, { recursive: true, force: true });
      else await delay(WAIT_STEP_MS);
      continue;
    }
    try {
      const again = await read(dir);
      if (again) return again;
      const ca = await rootCa('nodecaddy Local Authority - Root', ROOT_VALID_MS);
      // Written under temporary names and renamed: a reader never sees half a file.
      await writeFile(path.join(dir, 'root.key.tmp'), ca.key, { mode: 0o600 });
      await writeFile(path.join(dir, 'root.crt.tmp'), ca.cert, { mode: 0o644 });
      await rename(path.join(dir, 'root.key.tmp'), path.join(dir, 'root.key'));
      await rename(path.join(dir, 'root.crt.tmp'), path.join(dir, 'root.crt'));
      return ca;
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}
