// Log destinations and Caddy v1's roller sub-directives (rotate_size, rotate_age, rotate_keep, rotate_compress,
// rotate_disable), shared by `log` and `errors`.
import path from 'node:path';
import type { Dispenser } from '../../caddyfile/index.js';
import { escapeGlob, hideFile, hidePattern } from '../files/hidden.js';
import type { SiteConfig } from '../site.js';

/** lumberjack's settings as Caddy v1 used them: size in MB, age in days, 0 = no limit (size 0 = 100 MB). */
export interface RollOptions {
  disabled: boolean;
  maxSizeMB: number;
  maxAgeDays: number;
  maxBackups: number;
  compress: boolean;
}

/** Caddy v1's DefaultLogRoller: 100 MB, 14 days, 10 backups, no compression. */
export function defaultRoll(): RollOptions {
  return { disabled: false, maxSizeMB: 100, maxAgeDays: 14, maxBackups: 10, compress: false };
}

/** Where lines go: a file (absolute path, rolled unless disabled) or a standard stream. */
export type LogTarget = { kind: 'stdout' } | { kind: 'stderr' } | { kind: 'file'; path: string };

export const ROLLER_SUBDIRECTIVES = [
  'rotate_size',
  'rotate_age',
  'rotate_keep',
  'rotate_compress',
  'rotate_disable',
] as const;

export function isRollerSubdirective(name: string): boolean {
  return (ROLLER_SUBDIRECTIVES as readonly string[]).includes(name);
}

/**
 * Applies one roller line (`what` and its `args`, the Dispenser on that line) to `roll`. Wrong argument counts
 * and non-integers fail at load time with file:line and the expected form.
 */
export function parseRollerLine(
  d: Dispenser,
  roll: RollOptions,
  what: string,
  args: readonly string[],
): void {
  if (what === 'rotate_compress' || what === 'rotate_disable') {
    if (args.length !== 0) throw d.err(`invalid roller parameter: ${what} takes no arguments`);
    if (what === 'rotate_compress') roll.compress = true;
    else roll.disabled = true;
    return;
  }
  const unit = what === 'rotate_size' ? 'megabytes' : what === 'rotate_age' ? 'days' : 'files';
  if (args.length !== 1 || !/^\d+$/.test(args[0]) || !Number.isSafeInteger(Number(args[0])))
    throw d.err(`invalid roller parameter: expected '${what} <${unit}>' with a whole number`);
  const n = Number(args[0]);
  if (what === 'rotate_size') roll.maxSizeMB = n;
  else if (what === 'rotate_age') roll.maxAgeDays = n;
  else roll.maxBackups = n;
}

/** `stdout`, `stderr` (also ''), or a file path relative to the working directory, as Caddy v1. */
export function parseTarget(output: string, cwd: string): LogTarget {
  if (output === 'stdout') return { kind: 'stdout' };
  if (output === '' || output === 'stderr') return { kind: 'stderr' };
  return { kind: 'file', path: path.resolve(cwd, output) };
}

/**
 * Keeps a log file out of the file server and browse (it may lie under a site's root): the file itself for
 * every site of the config, also before it exists, and for this site its rotated backups
 * (`<name>-<time><ext>`, maybe `.gz`) and the rotation lock (`<file>.rotating`, see rotate.ts).
 */
export function hideLogTarget(site: SiteConfig, target: LogTarget): void {
  if (target.kind !== 'file') return;
  hideFile(site, target.path);
  hideFile(site, `${target.path}.rotating`);
  const ext = path.extname(target.path);
  const stem = escapeGlob(target.path.slice(0, target.path.length - ext.length));
  hidePattern(site, `${stem}-*${escapeGlob(ext)}`);
  hidePattern(site, `${stem}-*${escapeGlob(ext)}.gz`);
}
