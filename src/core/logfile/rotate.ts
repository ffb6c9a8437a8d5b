// Rolling a log file the way lumberjack (Caddy v1's roller) does, made safe for several processes appending to
// the same file:
// - Backups are named `<name>-<2006-01-02T15-04-05.000><ext>` in local time, beside the file.
// - Only one process rotates at a time: it takes a lock by creating `<file>.rotating` (mkdir is atomic), checks
//   that the file at the path is still the one it has open (same device and inode), renames it to the backup
//   name and opens a fresh file. A lock older than STALE_LOCK_MS (a process that died mid-rotation) is removed.
// - The other processes notice before their next batch that the path now names another inode and reopen it.
//   Until then they append (O_APPEND) to the renamed file, so no line is lost; it lands in the backup.
// - Retention (rotate_keep, rotate_age) and compression (rotate_compress) run after a rotation, off the write
//   path. A file another process already removed or compressed is skipped.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { RollOptions } from './options.js';

const STALE_LOCK_MS = 30_000;
const DAY_MS = 24 * 60 * 60 * 1000;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** lumberjack's backup timestamp `2006-01-02T15-04-05.000`, local time. */
export function backupStamp(d: Date): string {
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

function splitName(file: string): { dir: string; prefix: string; ext: string } {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const ext = path.extname(base);
  return { dir, prefix: `${base.slice(0, base.length - ext.length)}-`, ext };
}

export function backupName(file: string, when: Date): string {
  const { dir, prefix, ext } = splitName(file);
  return path.join(dir, `${prefix}${backupStamp(when)}${ext}`);
}

const STAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})$/;

interface Backup {
  file: string;
  time: number;
  compressed: boolean;
}

/** The backups of `file` in its directory, newest first. */
export async function listBackups(file: string): Promise<Backup[]> {
  const { dir, prefix, ext } = splitName(file);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const out: Backup[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const compressed = name.endsWith(`${ext}.gz`);
    if (!compressed && !name.endsWith(ext)) continue;
    const stamp = name.slice(prefix.length, name.length - ext.length - (compressed ? 3 : 0));
    const m = STAMP.exec(stamp);
    if (!m) continue;
    const [, y, mo, d, h, mi, s, ms] = m.map(Number);
    const time = new Date(y, mo - 1, d, h, mi, s, ms).getTime();
    out.push({ file: path.join(dir, name), time, compressed });
  }
  return out.sort((a, b) => b.time - a.time);
}

/**
 * Renames `file` to a backup if it is still the inode we have open. Returns false when another process holds
 * the rotation lock or has already rotated (the caller then reopens the path).
 */
export async function rotateIfStill(file: string, dev: number, ino: number): Promise<boolean> {
  const lock = `${file}.rotating`;
  try {
    await fs.mkdir(lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await fs.stat(lock).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await fs.rmdir(lock).catch(() => undefined);
    return false;
  }
  try {
    const st = await fs.stat(file).catch(() => undefined);
    if (!st || st.dev !== dev || st.ino !== ino) return false;
    let target = backupName(file, new Date());
    // Two rotations within one millisecond (tiny rotate sizes): never overwrite a backup.
    for (let i = 1; await exists(target); i++) target = backupName(file, new Date(Date.now() + i));
    await fs.rename(file, target);
    return true;
  } finally {
    await fs.rmdir(lock).catch(() => undefined);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/** Compresses and prunes backups as the roll options say. Errors on single files are ignored (races). */
export async function maintainBackups(file: string, roll: RollOptions, now = Date.now()): Promise<void> {
  let backups = await listBackups(file);
  const doomed = new Set<Backup>();
  if (roll.maxBackups > 0) for (const b of backups.slice(roll.maxBackups)) doomed.add(b);
  if (roll.maxAgeDays > 0)
    for (const b of backups) if (now - b.time > roll.maxAgeDays * DAY_MS) doomed.add(b);
  for (const b of doomed) await fs.unlink(b.file).catch(() => undefined);
  backups = backups.filter((b) => !doomed.has(b));
  if (!roll.compress) return;
  for (const b of backups) {
    if (b.compressed) continue;
    const gz = `${b.file}.gz`;
    const tmp = `${gz}.${process.pid}.tmp`;
    try {
      await pipeline(createReadStream(b.file), createGzip(), createWriteStream(tmp, { flags: 'wx' }));
      await fs.rename(tmp, gz);
      await fs.unlink(b.file);
    } catch {
      await fs.unlink(tmp).catch(() => undefined);
    }
  }
}
