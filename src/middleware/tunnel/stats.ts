// What the server tells about its tunnel sessions: the admin endpoint's /tunnels rows, the tunnel metrics,
// and a session's totals when it ends. Every counter of a session is read in sessionCounters() alone.
import { registerCollector, registerStatus, type Family, type Series } from '../../core/metrics/registry.js';
import type { TunnelSession } from './session.js';
import { tunnelCluster } from './cluster.js';

export interface SessionCounters {
  /** Bytes sent into the tunnel, to the client (the visitors' requests), on the wire. */
  bytesIn: number;
  /** Bytes that came out of the tunnel, from the client (the local service's answers), on the wire. */
  bytesOut: number;
  /** Requests and TCP connections being carried now. */
  streams: number;
}

/**
 * The one place that reads a session's counters for the metrics: its own link's (each process counts what
 * crossed its own links; a join's share is in its process's metrics, not again in the holder's).
 */
export function sessionCounters(session: TunnelSession): SessionCounters {
  const t = session.linkTraffic();
  return { bytesIn: t.bytesIn, bytesOut: t.bytesOut, streams: t.openStreams };
}

/** Tunnel names kept for the bytes counter; beyond that, names that come and go count as `other`. */
const MAX_NAMES = 1000;
const live = new Set<TunnelSession>();
/** Bytes of sessions that ended, by tunnel name: the counter keeps counting across reconnects. */
const ended = new Map<string, { in: number; out: number }>();

function totalsOf(name: string): { in: number; out: number } {
  const key = ended.has(name) || ended.size < MAX_NAMES ? name : 'other';
  let totals = ended.get(key);
  if (!totals) {
    totals = { in: 0, out: 0 };
    ended.set(key, totals);
  }
  return totals;
}

/** Counts a connected session until it ends. */
export function trackSession(session: TunnelSession): void {
  live.add(session);
  session.onClose((s) => {
    live.delete(s);
    const c = sessionCounters(s);
    const totals = totalsOf(s.host);
    totals.in += c.bytesIn;
    totals.out += c.bytesOut;
  });
}

registerStatus('tunnels', () => {
  // In a cluster, which instance holds them (each instance lists its own).
  const instance = tunnelCluster()?.instanceId;
  // A joined link's traffic is in its holder's row (the tunnel's totals over all links).
  return [...live]
    .filter((s) => !s.joined)
    .map((s) => {
      const t = s.traffic();
      return {
        tunnel: s.host,
        ...(instance && { instance }),
        links: t.links,
        proto: t.proto,
        ...(t.port !== undefined && { port: t.port }),
        remote: s.remote,
        connected: t.since.toISOString(),
        requests: t.requests,
        connections: t.connections,
        streams: t.openStreams,
        bytes_in: t.bytesIn,
        bytes_out: t.bytesOut,
      };
    });
});

registerCollector((): Family[] => {
  const bytes = new Map<string, { in: number; out: number }>();
  for (const [name, t] of ended) bytes.set(name, { ...t });
  for (const s of live) {
    const c = sessionCounters(s);
    const key = bytes.has(s.host) || bytes.size < MAX_NAMES ? s.host : 'other';
    const t = bytes.get(key) ?? { in: 0, out: 0 };
    t.in += c.bytesIn;
    t.out += c.bytesOut;
    bytes.set(key, t);
  }
  const series: Series[] = [];
  for (const [name, t] of bytes) {
    series.push({ labels: [name, 'in'], value: t.in }, { labels: [name, 'out'], value: t.out });
  }
  return [
    {
      name: 'nodecaddy_tunnel_sessions',
      help: 'Tunnel clients connected now.',
      type: 'gauge',
      labelNames: [],
      merge: 'sum',
      series: [{ labels: [], value: [...live].filter((s) => !s.joined).length }],
    },
    {
      name: 'nodecaddy_tunnel_bytes_total',
      help: 'Bytes through tunnels, by tunnel name: in = into the tunnel (requests), out = out of it (answers).',
      type: 'counter',
      labelNames: ['tunnel', 'direction'],
      merge: 'sum',
      series,
    },
  ];
});
