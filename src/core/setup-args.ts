// Reading a directive's arguments: one way to take a single argument, a duration or an integer from the
// Caddyfile, each failure a Caddyfile error at the current token (file:line) saying what was expected.
// Beside the Dispenser in spirit; here because src/caddyfile knows nothing of durations.
import type { Dispenser } from '../caddyfile/dispenser.js';
import { parseDuration } from './duration.js';

/** The line's only remaining argument; anything else is "wrong argument count". */
export function oneArg(d: Dispenser): string {
  const args = d.remainingArgs();
  if (args.length !== 1) throw d.argErr();
  return args[0];
}

/**
 * A Go-syntax duration (`30s`, `1m30s`, `250ms`, `0`) in milliseconds, possibly fractional; never negative.
 * `what` (the subdirective) starts the message when given.
 */
export function durationArg(d: Dispenser, text: string, what?: string): number {
  const prefix = what ? `${what}: ` : '';
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw d.err(`${prefix}invalid duration '${text}' (e.g. 30s, 1m30s, 250ms)`);
  }
  if (ms < 0) throw d.err(`${prefix}negative duration '${text}'`);
  return ms;
}

/** A whole number of at least `min` (decimal digits, optionally signed). */
export function intArg(d: Dispenser, text: string, min: number, what: string): number {
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) throw d.err(`${what}: '${text}' is not an integer`);
  if (n < min) throw d.err(`${what} must be at least ${min}, not ${n}`);
  return n;
}

/**
 * Runs a check or a file read for the current line; an error it throws becomes a Caddyfile error at the
 * current token, its message after `prefix`.
 */
export function atLine<T>(d: Dispenser, fn: () => T, prefix = ''): T {
  try {
    return fn();
  } catch (err) {
    throw d.err(`${prefix}${(err as Error).message}`);
  }
}
