// Load-balancing policies, as Caddy v1's proxy has them (reference 4.18), for any pool of UpstreamHosts.
import type { RequestContext } from '../context.js';
import { clientIp } from '../forwarded.js';
import type { UpstreamHost } from './host.js';

/** What a policy may look at. Built from a RequestContext by selectionInput(). */
export interface SelectionInput {
  /** Client IP without port. */
  readonly ip: string;
  /** The request URI as the client sent it. */
  readonly uri: string;
  header(name: string): string | undefined;
}

export interface Policy {
  readonly name: string;
  /** A host that is available now, or undefined when none is. */
  select(hosts: readonly UpstreamHost[], input: SelectionInput): UpstreamHost | undefined;
}

export const POLICY_NAMES = [
  'random',
  'least_conn',
  'round_robin',
  'ip_hash',
  'uri_hash',
  'header',
  'first',
] as const;

export function selectionInput(ctx: RequestContext): SelectionInput {
  return {
    ip: clientIp(ctx.req.socket.remoteAddress),
    uri: ctx.originalUri,
    header: (name) => {
      const lower = name.toLowerCase();
      const v = Object.hasOwn(ctx.req.headers, lower) ? ctx.req.headers[lower] : undefined;
      return Array.isArray(v) ? v.join(', ') : v;
    },
  };
}

/**
 * Picks a host with the policy; a pool of one host is used directly when available (as Caddy does,
 * whatever the policy).
 */
export function selectHost(
  policy: Policy,
  hosts: readonly UpstreamHost[],
  input: SelectionInput,
): UpstreamHost | undefined {
  if (hosts.length === 1) return hosts[0].available() ? hosts[0] : undefined;
  return policy.select(hosts, input);
}

/**
 * A policy by name, with its optional argument (`header <Name>`). Each call makes a new instance with its
 * own counters. Throws an Error naming the valid policies for an unknown name.
 */
export function createPolicy(name: string, arg?: string): Policy {
  switch (name) {
    case 'random':
      return { name, select: (hosts) => randomAvailable(hosts) };
    case 'least_conn':
      return { name, select: leastConn };
    case 'round_robin':
      return roundRobin(name);
    case 'first':
      return { name, select: (hosts) => hosts.find((h) => h.available()) };
    case 'ip_hash':
      return { name, select: (hosts, input) => hashed(hosts, fnv1a32(input.ip)) };
    case 'uri_hash':
      return { name, select: (hosts, input) => hashed(hosts, fnv1a32(input.uri)) };
    case 'header': {
      // Caddy falls back to round robin when the header is absent or empty; with no name it selects nothing.
      const fallback = roundRobin(name);
      return {
        name,
        select: (hosts, input) => {
          if (!arg) return undefined;
          const value = input.header(arg);
          return value ? hashed(hosts, fnv1a32(value)) : fallback.select(hosts, input);
        },
      };
    }
    default:
      throw new Error(`unknown policy '${name}' (expected one of: ${POLICY_NAMES.join(', ')})`);
  }
}

function randomAvailable(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
  // Reservoir sampling: one pass, uniform over the available hosts.
  let chosen: UpstreamHost | undefined;
  let seen = 0;
  for (const h of hosts) {
    if (!h.available()) continue;
    seen++;
    if (Math.random() * seen < 1) chosen = h;
  }
  return chosen;
}

function leastConn(hosts: readonly UpstreamHost[]): UpstreamHost | undefined {
  let best: UpstreamHost | undefined;
  let ties = 0;
  for (const h of hosts) {
    if (!h.available()) continue;
    if (!best || h.conns < best.conns) {
      best = h;
      ties = 1;
    } else if (h.conns === best.conns) {
      // Ties broken at random, by reservoir sampling among the equals.
      ties++;
      if (Math.random() * ties < 1) best = h;
    }
  }
  return best;
}

function roundRobin(name: string): Policy {
  let robin = 0;
  return {
    name,
    select: (hosts) => {
      const n = hosts.length;
      for (let i = 0; i < n; i++) {
        // Incremented before use, as Caddy: the first request goes to the second host.
        robin = (robin + 1) % n;
        if (hosts[robin].available()) return hosts[robin];
      }
      return undefined;
    },
  };
}

/** Caddy's probing from hash % n on: offsets 0, 1, 3, 6, … (index += i). */
function hashed(hosts: readonly UpstreamHost[], hash: number): UpstreamHost | undefined {
  const n = hosts.length;
  if (n === 0) return undefined;
  let index = hash % n;
  for (let i = 0; i < n; i++) {
    index = (index + i) % n;
    if (hosts[index].available()) return hosts[index];
  }
  return undefined;
}

/** FNV-1a, 32 bits, over the UTF-8 bytes of s. */
export function fnv1a32(s: string): number {
  const bytes = Buffer.from(s, 'utf8');
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
