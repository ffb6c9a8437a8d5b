// The cluster view in the metrics: which instance this is (every instance is scraped on its own; the label
// tells them apart in one dashboard), whether Redis answers, how long its commands take and how many fail.
// Tunnel requests relayed between instances are counted by the relay (src/cluster/relay).
import { histogramSeries, registerCollector, type Family } from '../core/metrics/registry.js';

/** Seconds: a Redis command on a LAN takes ~0.1 ms (scale.md §8.1); the deadline is 0.5 s. */
const BOUNDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

const durations = new Float64Array(BOUNDS.length + 1);
let durationSum = 0;
let errors = 0;
let up: number | undefined;
let info: { instance: string; storage: string } | undefined;

export function recordRedisCall(seconds: number, ok: boolean): void {
  if (!ok) {
    errors++;
    return;
  }
  let i = 0;
  while (i < BOUNDS.length && seconds > BOUNDS[i]) i++;
  durations[i]++;
  durationSum += seconds;
}

export function setRedisUp(value: boolean): void {
  up = value ? 1 : 0;
}

/** This process belongs to the named instance of a cluster sharing `storage` (its description, no password). */
export function setClusterInfo(instance: string, storage: string): void {
  info = { instance, storage };
}

registerCollector(() => {
  const out: Family[] = [];
  if (info) {
    out.push({
      name: 'nodecaddy_cluster_info',
      help: 'This instance of a nodecaddy cluster (instances sharing one storage), with its id; always 1.',
      type: 'gauge',
      labelNames: ['instance', 'storage'],
      merge: 'min',
      series: [{ labels: [info.instance, info.storage], value: 1 }],
    });
  }
  if (up === undefined) return out;
  out.push(
    {
      name: 'nodecaddy_redis_up',
      help: 'Whether Redis answers (1) or not (0); the lowest of this instance’s processes.',
      type: 'gauge',
      labelNames: [],
      merge: 'min',
      series: [{ labels: [], value: up }],
    },
    {
      name: 'nodecaddy_redis_command_duration_seconds',
      help: 'Round trips of Redis commands (and scripts) that succeeded.',
      type: 'histogram',
      labelNames: [],
      merge: 'sum',
      bounds: BOUNDS,
      series: [histogramSeries([], durations, durationSum)],
    },
    {
      name: 'nodecaddy_redis_errors_total',
      help: 'Redis commands that failed: Redis unreachable, too slow (0.5 s), or an error reply.',
      type: 'counter',
      labelNames: [],
      merge: 'sum',
      series: [{ labels: [], value: errors }],
    },
  );
  return out;
});
