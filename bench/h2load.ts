// Runs h2load (nghttp2's HTTP/2 load generator) for a fixed time and reads its report, plus the per-request log
// it writes, for the same figures wrk gives: requests/s, bytes/s, p50/p99 and errors.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import type { WrkResult } from './wrk.js';

export interface H2loadOptions {
  url: string;
  connections: number;
  /** Concurrent streams per connection. */
  streams: number;
  seconds: number;
  /** Where h2load writes one line per request (removed after reading). */
  logFile: string;
  headers?: Record<string, string>;
}

export function h2load(o: H2loadOptions): Promise<WrkResult> {
  const args = ['-t', '1', '-c', String(o.connections), '-m', String(o.streams), '-D', String(o.seconds)];
  args.push('--log-file', o.logFile);
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  return new Promise((resolve, reject) => {
    execFile('h2load', args, { timeout: (o.seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`h2load failed: ${err.message} ${stderr}`));
      try {
        const latencies = readLatencies(o.logFile);
        resolve(parseH2load(stdout, latencies));
      } catch (e) {
        reject(new Error(`${(e as Error).message}\n${stdout}`));
      } finally {
        rmSync(o.logFile, { force: true });
      }
    });
  });
}

/** Microseconds per request from h2load's --log-file (start µs, status, duration µs), sorted. */
function readLatencies(file: string): number[] {
  const out: number[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const cols = line.split('\t');
    if (cols.length >= 3) out.push(Number(cols[2]));
  }
  return out.sort((a, b) => a - b);
}

const SIZE: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

export function parseH2load(out: string, sortedUs: readonly number[]): WrkResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`h2load output lacks ${re.source}`);
    return m;
  };
  const finished = num(/finished in ([\d.]+)(ms|s), ([\d.]+) req\/s, ([\d.]+)([KMG]?B)\/s/);
  const requests = num(
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
  );
  const codes = num(/status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/);
  const pct = (p: number) =>
    sortedUs.length ? sortedUs[Math.min(sortedUs.length - 1, Math.floor(sortedUs.length * p))] / 1000 : NaN;
  const protocol = /Application protocol: (\S+)/.exec(out)?.[1];
  return {
    requests: Number(requests[1]),
    rps: Number(finished[3]),
    bytesPerSec: Number(finished[4]) * (SIZE[finished[5]] ?? NaN),
    p50ms: pct(0.5),
    p99ms: pct(0.99),
    errors:
      Number(requests[2]) + Number(requests[3]) + Number(requests[4]) + Number(codes[3]) + Number(codes[4]),
    problem: protocol === 'h2' ? undefined : `spoke ${protocol ?? 'no protocol'}, not h2`,
  };
}
