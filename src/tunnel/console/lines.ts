// What `nodecaddy tunnel` prints when its output is not a terminal (or with -log-format json): one line
// per event, plain text or JSON.
import type { ExchangeSummary } from '../forward-http.js';
import type { TcpSummary } from '../forward-tcp.js';

export interface Output {
  /** Status lines: forwarding, reconnecting, refused. */
  info(line: string): void;
  exchange(summary: ExchangeSummary): void;
  tcp(summary: TcpSummary): void;
  /** The tunnel's state changed (the status screen redraws; lines have nothing to say). */
  changed(): void;
  /** Gives the terminal back as it was. */
  close(): void;
}

/** `GET /api 200 12ms`, `GET /ws 101 websocket 3ms`, `POST /x 502 (connection refused) 1ms`. */
export function exchangeLine(s: ExchangeSummary): string {
  const status = s.upgrade && s.status === 101 ? `101 ${s.upgrade}` : String(s.status ?? '-');
  return `${s.method} ${s.path} ${status}${s.error ? ` (${s.error})` : ''} ${Math.round(s.durationMs)}ms`;
}

export function tcpLine(s: TcpSummary): string {
  return `TCP ${s.remote || '?'} ${s.error ? `refused (${s.error})` : 'closed'} after ${Math.round(s.durationMs)}ms`;
}

/**
 * Lines gathered for up to `delayMs` and written together: stdout to a pipe or a file is a synchronous write
 * on Linux, one system call per request line otherwise (a busy tunnel finishes only a few requests per turn
 * of the event loop). `flush` writes what waits (at exit).
 */
export function batched(
  write: (text: string) => void,
  delayMs = 50,
): {
  write: (text: string) => void;
  flush: () => void;
} {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    const text = pending;
    pending = '';
    write(text);
  };
  return {
    write: (text) => {
      pending += text;
      if (pending.length >= 64 * 1024) flush();
      else timer ??= setTimeout(flush, delayMs);
    },
    flush,
  };
}

export function plainOutput(write: (text: string) => void, quiet: boolean): Output {
  return {
    info: (line) => write(`${line}\n`),
    exchange: (s) => {
      if (!quiet) write(`${exchangeLine(s)}\n`);
    },
    tcp: (s) => {
      if (!quiet) write(`${tcpLine(s)}\n`);
    },
    changed: () => undefined,
    close: () => undefined,
  };
}

export function jsonOutput(write: (text: string) => void, quiet: boolean): Output {
  const line = (fields: Record<string, unknown>) =>
    write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
  return {
    info: (msg) => line({ level: 'info', msg }),
    exchange: (s) => {
      if (quiet) return;
      line({
        level: 'info',
        msg: 'request',
        method: s.method,
        path: s.path,
        status: s.status ?? null,
        ...(s.upgrade && { upgrade: s.upgrade }),
        ...(s.error && { error: s.error }),
        duration_ms: Math.round(s.durationMs * 10) / 10,
        ...(s.id && { id: s.id }),
      });
    },
    tcp: (s) => {
      if (quiet) return;
      line({
        level: 'info',
        msg: 'tcp connection',
        remote: s.remote,
        duration_ms: Math.round(s.durationMs),
        ...(s.error && { error: s.error }),
      });
    },
    changed: () => undefined,
    close: () => undefined,
  };
}
