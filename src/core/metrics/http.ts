// Request metrics: per site, requests by method and code, a duration and a size histogram; and the requests in
// flight. A site's numbers live in typed arrays found once per Site object (a config load makes new ones; the
// label finds the same numbers again, so counters keep counting across reloads); a request only adds to slots.
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../context.js';
import type { Site } from '../site.js';
import { CODE_LABELS, METHOD_LABELS, codeSlot, methodSlot } from './labels.js';
import { histogramSeries, registerCollector, type Family, type Series } from './registry.js';

/** Seconds; Prometheus' default buckets (Caddy 2 uses the same). */
export const DURATION_BOUNDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Bytes: 256 B to 4 MiB by fours (Caddy 2's size buckets). */
export const SIZE_BOUNDS: readonly number[] = [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

const CODES = CODE_LABELS.length;

class SiteNumbers {
  readonly label: string;
  /** method slot × CODES + code slot. */
  readonly requests = new Float64Array(METHOD_LABELS.length * CODES);
  readonly durations = new Float64Array(DURATION_BOUNDS.length + 1);
  durationSum = 0;
  readonly sizes = new Float64Array(SIZE_BOUNDS.length + 1);
  sizeSum = 0;

  constructor(label: string) {
    this.label = label;
  }

  record(ctx: RequestContext): void {
    this.requests[methodSlot(ctx.req.method) * CODES + codeSlot(ctx.res.statusCode)]++;
    const seconds = (performance.now() - ctx.startTime) / 1000;
    this.durations[bucket(DURATION_BOUNDS, seconds)]++;
    this.durationSum += seconds;
    // The body bytes that reached the wire (after gzip): core/response.ts counts them for every response.
    const size = ctx.bytesWritten;
    this.sizes[bucket(SIZE_BOUNDS, size)]++;
    this.sizeSum += size;
  }
}

/** Index of the first bound the value does not exceed (`le` is inclusive), or bounds.length for +Inf. */
function bucket(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]) i++;
  return i;
}

let enabled = false;
let inFlight = 0;
const byLabel = new Map<string, SiteNumbers>();
const bySite = new WeakMap<Site, SiteNumbers>();

/** Turns request counting on (the admin endpoint is on) or off. Off, observeRequest() returns at once. */
export function enableRequestMetrics(on: boolean): void {
  enabled = on;
}

function numbersFor(site: Site): SiteNumbers {
  let numbers = byLabel.get(site.label);
  if (!numbers) {
    numbers = new SiteNumbers(site.label);
    byLabel.set(site.label, numbers);
  }
  bySite.set(site, numbers);
  return numbers;
}

/** Counts one request from now until its response closes: the core's one call per request. */
export function observeRequest(ctx: RequestContext): void {
  if (!enabled) return;
  const numbers = bySite.get(ctx.site) ?? numbersFor(ctx.site);
  inFlight++;
  ctx.res.on('close', () => {
    inFlight--;
    numbers.record(ctx);
  });
}

function collect(): Family[] {
  const requests: Series[] = [];
  const durations: Series[] = [];
  const sizes: Series[] = [];
  for (const n of byLabel.values()) {
    for (let m = 0; m < METHOD_LABELS.length; m++) {
      for (let c = 0; c < CODES; c++) {
        const value = n.requests[m * CODES + c];
        if (value > 0) requests.push({ labels: [n.label, METHOD_LABELS[m], CODE_LABELS[c]], value });
      }
    }
    durations.push(histogramSeries([n.label], n.durations, n.durationSum));
    sizes.push(histogramSeries([n.label], n.sizes, n.sizeSum));
  }
  return [
    {
      name: 'nodecaddy_http_requests_total',
      help: 'Requests answered, by site (its label in the Caddyfile), method and status code.',
      type: 'counter',
      labelNames: ['site', 'method', 'code'],
      merge: 'sum',
      series: requests,
    },
    {
      name: 'nodecaddy_http_request_duration_seconds',
      help: 'Time from the request head to the end of the response, by site.',
      type: 'histogram',
      labelNames: ['site'],
      merge: 'sum',
      bounds: DURATION_BOUNDS,
      series: durations,
    },
    {
      name: 'nodecaddy_http_response_size_bytes',
      help: 'Response body bytes sent (after compression), by site; streams of unknown length only when counted.',
      type: 'histogram',
      labelNames: ['site'],
      merge: 'sum',
      bounds: SIZE_BOUNDS,
      series: sizes,
    },
    {
      name: 'nodecaddy_http_requests_in_flight',
      help: 'Requests being answered now.',
      type: 'gauge',
      labelNames: [],
      merge: 'sum',
      series: [{ labels: [], value: inFlight }],
    },
  ];
}

registerCollector(collect);
