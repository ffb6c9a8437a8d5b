// The client's own counters, for the status screen and the agent API (ngrok's `conns` and `http` metrics):
// totals, what is open, rates over the last 1, 5 and 15 minutes, and percentiles of recent durations.
// Recording is an increment and an array store: it runs once per request.

const WINDOW_S = 15 * 60;
const RECENT = 1024;

export class Series {
  /** Completed events in all. */
  count = 0;
  /** In progress. */
  gauge = 0;
  /** Events per second of the last WINDOW_S seconds, as a ring indexed by the second. */
  private readonly perSecond = new Uint32Array(WINDOW_S);
  private lastSecond = 0;
  /** The last RECENT durations (ms), as a ring. */
  private readonly durations = new Float64Array(RECENT);
  private recorded = 0;

  opened(): void {
    this.gauge++;
  }

  closed(durationMs: number, now = Date.now()): void {
    this.gauge = Math.max(0, this.gauge - 1);
    this.count++;
    this.durations[this.recorded++ % RECENT] = durationMs;
    this.tick(now);
    this.perSecond[Math.floor(now / 1000) % WINDOW_S]++;
  }

  /** Events per second over the last `minutes`. */
  rate(minutes: 1 | 5 | 15, now = Date.now()): number {
    this.tick(now);
    const current = Math.floor(now / 1000);
    const seconds = minutes * 60;
    let sum = 0;
    for (let s = current - seconds + 1; s <= current; s++) sum += this.perSecond[s % WINDOW_S];
    return sum / seconds;
  }

  /** The q-quantile (0..1) of the recent durations, in ms (0 with none). */
  quantile(q: number): number {
    const n = Math.min(this.recorded, RECENT);
    if (n === 0) return 0;
    const sorted = Array.from(this.durations.subarray(0, n)).sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.floor(q * n))];
  }

  /** Clears the seconds that passed since the last event (they had none). */
  private tick(now: number): void {
    const current = Math.floor(now / 1000);
    if (this.lastSecond === 0) this.lastSecond = current;
    const gap = Math.min(current - this.lastSecond, WINDOW_S);
    for (let i = 1; i <= gap; i++) this.perSecond[(this.lastSecond + i) % WINDOW_S] = 0;
    this.lastSecond = Math.max(this.lastSecond, current);
  }
}

/** ngrok's metric object: rates per second, percentiles in nanoseconds (Go durations). */
export function ngrokMetric(series: Series, withGauge: boolean): Record<string, number> {
  const ns = (q: number) => Math.round(series.quantile(q) * 1e6);
  return {
    count: series.count,
    ...(withGauge && { gauge: series.gauge }),
    rate1: series.rate(1),
    rate5: series.rate(5),
    rate15: series.rate(15),
    p50: ns(0.5),
    p90: ns(0.9),
    p95: ns(0.95),
    p99: ns(0.99),
  };
}
