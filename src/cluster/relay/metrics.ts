// What the relay between instances counts: requests relayed to other instances (out) and served for them (in),
// and the relays that failed, by the error code the relaying side got (peer-unreachable, timeout, not-here,
// peer-unauthenticated, or the holder's own code) or the holder gave (unauthorized, bad-request).
import { registerCollector, type Series } from '../../core/metrics/registry.js';

export type Direction = 'out' | 'in';

const relayed: Record<Direction, number> = { out: 0, in: 0 };
const failures = new Map<string, number>();

export function countRelayed(direction: Direction): void {
  relayed[direction]++;
}

export function countFailure(direction: Direction, code: string): void {
  const key = `${direction}\n${code}`;
  failures.set(key, (failures.get(key) ?? 0) + 1);
}

registerCollector(() => {
  if (relayed.out === 0 && relayed.in === 0 && failures.size === 0) return [];
  const failed: Series[] = [];
  for (const [key, value] of failures) failed.push({ labels: key.split('\n'), value });
  return [
    {
      name: 'nodecaddy_cluster_relayed_requests_total',
      help: 'Tunnel requests relayed to the instance holding the tunnel (out) and served for another instance (in).',
      type: 'counter',
      labelNames: ['direction'],
      merge: 'sum',
      series: [
        { labels: ['out'], value: relayed.out },
        { labels: ['in'], value: relayed.in },
      ],
    },
    {
      name: 'nodecaddy_cluster_relay_failures_total',
      help: 'Relayed tunnel requests that failed, by side (out: relaying, in: holding) and error code.',
      type: 'counter',
      labelNames: ['direction', 'code'],
      merge: 'sum',
      series: failed,
    },
  ];
});
