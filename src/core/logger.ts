// The process log (not the access log): pino, to stderr by default, or stdout, a file, or nowhere.
// JSON lines for machines; on a terminal, Caddy-style text lines for the person watching.
import { pino, type Logger } from 'pino';
import { escapeControl } from './replacer-format.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'text';

/** Text mode's level words, from the JSON line's level name (or pino's number, for lines written elsewhere). */
const LEVELS: Record<string, string> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'FATAL',
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'FATAL',
};
const OMIT = new Set(['level', 'time', 'pid', 'msg', 'hostname']);

/** `2026/11/20 23:30:00 [INFO] message key=value …` from one pino JSON line. */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const t = new Date(typeof rec.time === 'string' || typeof rec.time === 'number' ? rec.time : Date.now());
  const p = (n: number) => String(n).padStart(2, '0');
  const when = `${t.getFullYear()}/${p(t.getMonth() + 1)}/${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
  const level = LEVELS[String(rec.level)] ?? 'INFO';
  const fields = Object.entries(rec)
    .filter(([k]) => !OMIT.has(k))
    .map(
      ([k, v]) =>
        `${k}=${typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : escapeControl(v)) : JSON.stringify(v)}`,
    );
  // A message can carry request data (a URI in an error): its control characters are shown, not obeyed.
  const msg = typeof rec.msg === 'string' ? escapeControl(rec.msg) : '';
  return `${when} [${level}] ${msg}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}

/**
 * `-log` value → logger. `` / `stderr` → stderr; `stdout`; `off` / `discard` → silent; anything else is a file.
 * `auto` format is text on a terminal and JSON everywhere else (files, pipes, log collectors).
 */
export function createProcessLogger(target: string, format: LogFormat = 'auto'): Logger {
  const base = {
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // `"level":"info"` as log collectors (and Caddy 2) expect, not pino's numbers.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (target === 'off' || target === 'discard') return pino({ ...base, enabled: false });
  const fd = target === 'stdout' ? 1 : target === '' || target === 'stderr' ? 2 : undefined;
  const dest = pino.destination(
    fd === undefined ? { dest: target, mkdir: true, append: true, sync: true } : { dest: fd, sync: true },
  );
  const tty = fd === 1 ? process.stdout.isTTY : fd === 2 ? process.stderr.isTTY : false;
  const text = format === 'text' || (format === 'auto' && tty);
  return pino(base, text ? { write: (line: string) => void dest.write(formatTextLine(line)) } : dest);
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ enabled: false });
}
