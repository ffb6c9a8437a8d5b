// What the server tells about its tunnel sessions: the admin endpoint's /tunnels rows, the tunnel metrics,
// and a session's totals when it ends. Every counter of a session is read in sessionCounters() alone.
import { registerCollector, registerStatus, type Family, type Series } from '../../core/metrics/registry.js';
import type { TunnelSession } from './session.js';

export interface SessionCounters {
  /** Bytes received from the tunnel client (the local service's answers), on the wire. */
  bytesIn: number;
  /** Bytes sent to the tunnel client (the visitors' requests), on the wire. */
  bytesOut: number;
  /** Requests being carried now. */
  streams: number;
}

/** The one place that reads a session's counters. */
export function sessionCounters(session: TunnelSession): SessionCounters {
  return {
    bytesIn: session.wire?.bytesRead ?? 0,
    bytesOut: session.wire?.bytesWritten ?? 0,
    streams: session.streams,
  };
}

/** The fields of the log line when a session ends. */
export function sessionTotals(session: TunnelSession): Record<string, number> {
  const c = sessionCounters(session);
  return {
    seconds: Math.round((Date.now() - session.connectedAt) / 1000),
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
  };
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

registerStatus('tunnels', () =>
  [...live].map((s) => {
    const c = sessionCounters(s);
    return {
      tunnel: s.host,
      remote: s.remote,
      connected: new Date(s.connectedAt).toISOString(),
      streams: c.streams,
      bytes_in: c.bytesIn,
      bytes_out: c.bytesOut,
    };
  }),
);

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
      series: [{ labels: [], value: live.size }],
    },
    {
      name: 'nodecaddy_tunnel_bytes_total',
      help: 'Bytes through tunnels, by tunnel name: in = from the tunnel client, out = to it (on the wire).',
      type: 'counter',
      labelNames: ['tunnel', 'direction'],
      merge: 'sum',
      series,
    },
  ];
});
