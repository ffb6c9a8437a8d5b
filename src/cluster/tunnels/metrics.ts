// The tunnel registry in the metrics: claims by result (how often names were refused as taken, over the
// cluster-wide max_sessions, or because Redis was away) and what renewals found (names restored after a Redis
// restart, names lost to another holder). Relayed requests are counted by the relay.
import { registerCollector, type Family } from '../../core/metrics/registry.js';

export type ClaimResult = 'ok' | 'taken' | 'too-many-sessions' | 'unavailable';
export type RenewResult = 'ok' | 'restored' | 'lost' | 'failed';

const claims = new Map<ClaimResult, number>();
const renewals = new Map<RenewResult, number>();

export function countClaim(result: ClaimResult): void {
  claims.set(result, (claims.get(result) ?? 0) + 1);
}

export function countRenewal(result: RenewResult, n = 1): void {
  renewals.set(result, (renewals.get(result) ?? 0) + n);
}

registerCollector((): Family[] => {
  if (claims.size === 0 && renewals.size === 0) return [];
  return [
    {
      name: 'nodecaddy_tunnel_registry_claims_total',
      help: 'Tunnel names claimed in the cluster registry, by result (ok, taken, too-many-sessions, unavailable).',
      type: 'counter',
      labelNames: ['result'],
      merge: 'sum',
      series: [...claims].map(([result, value]) => ({ labels: [result], value })),
    },
    {
      name: 'nodecaddy_tunnel_registry_renewals_total',
      help: 'Registry entries of local tunnels renewed (ok), written again after Redis lost them (restored), found held by another instance (lost: the session closed), or not renewed because Redis was away (failed).',
      type: 'counter',
      labelNames: ['result'],
      merge: 'sum',
      series: [...renewals].map(([result, value]) => ({ labels: [result], value })),
    },
  ];
});
