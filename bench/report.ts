// bench/results.md (the table the README quotes) and bench/soak.md.
import { writeFileSync } from 'node:fs';
import type { Scenario } from './scenarios.js';
import type { WrkResult } from './wrk.js';

export interface Row extends WrkResult {
  scenario: string;
  title: string;
  server: string;
  /** Peak of the PSS sum over the server's processes. */
  peakPssKb: number;
  /** Peak RSS of the largest single worker process. */
  peakWorkerRssKb: number;
  /** The slowest and fastest of the measured runs (the row's other figures are the median run's). */
  minRps: number;
  maxRps: number;
  /** TCP rows (no requests): the slowest and fastest run's bytes per second. */
  minBytesPerSec?: number;
  maxBytesPerSec?: number;
  connections: number;
  /** A failed sanity check of the first response (then the numbers are not comparable). */
  note: string | undefined;
  /** The first response's body size as sent, where the scenario shows it. */
  body?: number;
  /** The load generator and its settings (wrk unless the scenario says otherwise). */
  load: string;
  /** Server CPU time (user + system, all its processes) per request: the median run's, and the extremes. */
  cpuUs: number;
  minCpuUs: number;
  maxCpuUs: number;
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const mbOrDash = (kb: number) => (kb ? `${(kb / 1024).toFixed(0)} MB` : '–');
const ms = (v: number) =>
  !Number.isFinite(v) ? '–' : `${v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;
const us = (r: Row) =>
  Number.isFinite(r.cpuUs)
    ? `${r.cpuUs.toFixed(0)} µs (${r.minCpuUs.toFixed(0)}–${r.maxCpuUs.toFixed(0)})`
    : '–';

/** nodecaddy's req/s over the peer's, and in brackets the peer's CPU per request over nodecaddy's. */
function ratio(row: Row, rows: Row[], server: string): string {
  if (row.server !== 'nodecaddy') return '';
  const peer = rows.find((r) => r.scenario === row.scenario && r.server === server);
  if (!peer || peer.rps <= 0) return '–';
  const cpu = Number.isFinite(row.cpuUs) && Number.isFinite(peer.cpuUs) && row.cpuUs > 0;
  return `${(row.rps / peer.rps).toFixed(2)}×${cpu ? ` (CPU ${(peer.cpuUs / row.cpuUs).toFixed(2)}×)` : ''}`;
}

/** A line for each scenario not loaded by wrk (the HTTPS ones), saying how it was. */
function otherLoads(rows: Row[]): string[] {
  const seen = new Map<string, string>();
  for (const r of rows) if (!r.load.startsWith('wrk ')) seen.set(r.title, r.load);
  return [...seen].map(([title, load]) => `- ${title}: \`${load}\` instead of wrk.`);
}

export function writeResults(
  file: string,
  run: {
    facts: Record<string, string>;
    options: {
      seconds: number;
      warmup: number;
      runs: number;
      threads: number;
      connections: number;
      workers: number;
    };
    rows: Row[];
    skipped: string[];
  },
): void {
  const { facts, options: o, rows, skipped } = run;
  const lines = [
    '# Benchmark results',
    '',
    `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    '',
    ...Object.entries(facts).map(([k, v]) => `- ${k}: ${v}`),
    `- Load: \`wrk -t${o.threads} -c${o.connections} -d${o.seconds}s --latency\` on the same machine (loopback), ` +
      `${o.runs} runs per server after a warm-up of ${o.warmup} s and at least 10,000 requests (up to 8 s); ` +
      'the 10 MB file uses `-c8`. The servers of a ' +
      'scenario run side by side and are loaded one at a time, in rounds that rotate their order; each row is ' +
      "the server's median run (req/s in brackets: its slowest and fastest run; errors: all runs).",
    `- Servers: nginx \`worker_processes ${o.workers}\`, Caddy \`GOMAXPROCS=${o.workers}\`, nodecaddy \`-workers ${o.workers}\`; ` +
      'access logs off in all three; keep-alive on; servers restarted for every scenario.',
    "- Memory, sampled every 200 ms: the peak of the PSS summed over all of the server's processes (master or " +
      'primary and workers; shared pages such as the program binary count once), and the peak RSS of the ' +
      'largest single worker (RSS counts the shared binary in full: about 43 MB of every Node process).',
    "- CPU/req: user + system time of all the server's processes during a measured run, divided by its requests " +
      '(the median run, and the extremes over the runs); it depends less on what else the machine runs than req/s. ' +
      "The ratio columns give req/s over the peer's, and in brackets the peer's CPU/req over nodecaddy's " +
      '(requests per CPU second, relative).',
    ...otherLoads(rows),
    '',
    '| Scenario | Server | req/s (min–max) | transfer/s | p50 | p99 | CPU/req (min–max) | memory (PSS) | RSS/worker | ×nginx | ×Caddy |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const flags = [
      r.body === undefined ? '' : `body ${r.body.toLocaleString('en-US')} B`,
      r.errors ? `${r.errors} errors` : '',
      r.note ?? '',
    ]
      .filter(Boolean)
      .join('; ');
    const tcp = r.minBytesPerSec !== undefined;
    lines.push(
      `| ${r.title} | ${r.server}${flags ? ` (${flags})` : ''} | ${tcp ? '–' : `${r.rps.toFixed(0)} (${r.minRps.toFixed(0)}–${r.maxRps.toFixed(0)})`} | ` +
        `${mb(r.bytesPerSec)} MB/s${tcp ? ` (${mb(r.minBytesPerSec ?? 0)}–${mb(r.maxBytesPerSec ?? 0)})` : ''} | ` +
        `${tcp ? '–' : ms(r.p50ms)} | ${tcp ? '–' : ms(r.p99ms)} | ${us(r)} | ${mbOrDash(r.peakPssKb)} | ${mbOrDash(r.peakWorkerRssKb)} | ` +
        `${ratio(r, rows, 'nginx')} | ${ratio(r, rows, 'caddy')} |`,
    );
  }
  if (skipped.length) lines.push('', 'Skipped:', '', ...skipped.map((s) => `- ${s}`));
  writeFileSync(file, `${lines.join('\n')}\n`);
}

export function writeSoak(
  file: string,
  run: {
    facts: Record<string, string>;
    scenario: Scenario;
    seconds: number;
    result: WrkResult;
    samples: { t: number; perPid: Map<number, number> }[];
    primary: number;
  },
): void {
  const { samples, primary } = run;
  const pids = [...new Set(samples.flatMap((s) => [...s.perPid.keys()]))];
  const label = (pid: number) => (pid === primary ? `primary ${pid}` : `worker ${pid}`);
  const step = Math.max(1, Math.floor(samples.length / 12));
  const picked = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
  const lines = [
    '# Soak: RSS over time under load',
    '',
    ...Object.entries(run.facts).map(([k, v]) => `- ${k}: ${v}`),
    `- Scenario \`${run.scenario.id}\` (${run.scenario.title}) for ${run.seconds} s: ` +
      `${run.result.rps.toFixed(0)} req/s, p99 ${ms(run.result.p99ms)}, ${run.result.errors} errors.`,
    '',
    `| t (s) | ${pids.map(label).join(' | ')} | total |`,
    `|---:|${pids.map(() => '---:').join('|')}|---:|`,
    ...picked.map((s) => {
      const cells = pids.map((pid) =>
        s.perPid.has(pid) ? `${(s.perPid.get(pid)! / 1024).toFixed(1)} MB` : '–',
      );
      const total = [...s.perPid.values()].reduce((a, b) => a + b, 0);
      return `| ${(s.t / 1000).toFixed(0)} | ${cells.join(' | ')} | ${(total / 1024).toFixed(1)} MB |`;
    }),
  ];
  // Flat or creeping? The mean of each process over the first and the last minute, and its peak.
  const minute = (from: number, to: number, pid: number) => {
    const v = samples
      .filter((s) => s.t >= from && s.t < to && s.perPid.has(pid))
      .map((s) => s.perPid.get(pid)!);
    return v.length ? `${(v.reduce((a, b) => a + b, 0) / v.length / 1024).toFixed(1)} MB` : '–';
  };
  const end = samples.length ? samples[samples.length - 1].t : 0;
  const peak = (pid: number) =>
    `${(Math.max(...samples.map((s) => s.perPid.get(pid) ?? 0)) / 1024).toFixed(1)} MB`;
  lines.push(
    `| first minute (mean) | ${pids.map((pid) => minute(0, 60_000, pid)).join(' | ')} | |`,
    `| last minute (mean) | ${pids.map((pid) => minute(end - 60_000, end + 1, pid)).join(' | ')} | |`,
    `| peak | ${pids.map(peak).join(' | ')} | |`,
  );
  writeFileSync(file, `${lines.join('\n')}\n`);
}
