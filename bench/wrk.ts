// Runs wrk and reads its report.
import { execFile } from 'node:child_process';

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
}

export interface WrkResult {
  requests: number;
  rps: number;
  /** Bytes per second read by wrk (headers + bodies). */
  bytesPerSec: number;
  p50ms: number;
  p99ms: number;
  /** Socket errors plus non-2xx/3xx responses: a run with errors is flagged in the table. */
  errors: number;
  /** Something that makes the run not comparable (e.g. HTTP/2 was not negotiated), shown beside the server. */
  problem?: string;
}

export function wrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (o.seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${err.message} ${stderr}`));
      try {
        resolve(parseWrk(stdout));
      } catch (e) {
        reject(new Error(`${(e as Error).message}\n${stdout}`));
      }
    });
  });
}

const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const SIZE: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output lacks ${re.source}`);
    return m;
  };
  const time = (m: RegExpExecArray) => Number(m[1]) * (TIME[m[2]] ?? NaN);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const transfer = num(/Transfer\/sec:\s+([\d.]+)([KMGT]?B)/);
  return {
    requests: Number(num(/(\d+) requests in/)[1]),
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)[1]),
    bytesPerSec: Number(transfer[1]) * (SIZE[transfer[2]] ?? NaN),
    p50ms: time(num(/^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m)),
    p99ms: time(num(/^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m)),
    errors:
      (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0),
  };
}
