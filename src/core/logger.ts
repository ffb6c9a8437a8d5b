// The process log (not the access log): pino, to stderr by default, or stdout, a file, or nowhere.
import { pino, type Logger } from 'pino';

export type { Logger };

/** `-log` value → logger. `` / `stderr` → stderr; `stdout`; `off` / `discard` → silent; anything else is a file. */
export function createProcessLogger(target: string): Logger {
  const base = { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  switch (target) {
    case 'off':
    case 'discard':
      return pino({ ...base, enabled: false });
    case 'stdout':
      return pino(base, pino.destination({ dest: 1, sync: true }));
    case '':
    case 'stderr':
      return pino(base, pino.destination({ dest: 2, sync: true }));
    default:
      return pino(base, pino.destination({ dest: target, mkdir: true, append: true, sync: true }));
  }
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ enabled: false });
}
