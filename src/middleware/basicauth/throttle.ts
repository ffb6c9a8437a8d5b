// Failed logins per client address. A few failures are free; after that every further failure shuts the
// address out for longer (1 s, 2 s, 4 s, … up to a minute), and while it is shut out its logins are refused
// with 429 before any password is checked. A success clears the address. An address may also have only a
// few checks under way at once, so one client cannot fill the queue of slow (bcrypt) checks that every
// client shares. The table is bounded: the least recently seen address goes first.
import { isIPv6 } from 'node:net';

export interface ThrottleLimits {
  /** Failures an address may have before it is shut out. */
  readonly freeFailures: number;
  /** The first shut-out; each further failure doubles it. */
  readonly firstBlockMs: number;
  readonly maxBlockMs: number;
  /** Failures older than this (with no newer one) are forgotten. */
  readonly forgetMs: number;
  /** Checks one address may have under way at once. */
  readonly maxPending: number;
  /** Addresses remembered at most. */
  readonly maxAddresses: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = {
  freeFailures: 5,
  firstBlockMs: 1000,
  maxBlockMs: 60_000,
  forgetMs: 15 * 60_000,
  maxPending: 4,
  maxAddresses: 10_000,
};

interface AddressState {
  failures: number;
  lastFailure: number;
  blockedUntil: number;
  pending: number;
}

export type Outcome = 'accepted' | 'failed' | 'unchecked';

export class FailureThrottle {
  private readonly limits: ThrottleLimits;
  private readonly now: () => number;
  private readonly table = new Map<string, AddressState>();

  constructor(limits: ThrottleLimits = DEFAULT_THROTTLE, now: () => number = Date.now) {
    this.limits = limits;
    this.now = now;
  }

  get size(): number {
    return this.table.size;
  }

  /**
   * 0 when the address may have its login checked now (then call done() once with the outcome), else the
   * seconds it should wait before trying again.
   */
  admit(address: string): number {
    const key = addressKey(address);
    const now = this.now();
    let state = this.table.get(key);
    if (state) {
      this.table.delete(key); // re-inserted below: most recently seen goes last
      if (state.failures > 0 && now - state.lastFailure > this.limits.forgetMs && state.blockedUntil <= now)
        state.failures = 0;
    } else {
      state = { failures: 0, lastFailure: 0, blockedUntil: 0, pending: 0 };
      if (this.table.size >= this.limits.maxAddresses) this.table.delete(this.table.keys().next().value!);
    }
    this.table.set(key, state);
    if (state.blockedUntil > now) return Math.ceil((state.blockedUntil - now) / 1000);
    if (state.pending >= this.limits.maxPending) return 1;
    state.pending++;
    return 0;
  }

  /** Records how an admitted check ended. */
  done(address: string, outcome: Outcome): void {
    const key = addressKey(address);
    const state = this.table.get(key);
    if (!state) return; // pushed out of the table meanwhile
    state.pending = Math.max(0, state.pending - 1);
    if (outcome === 'accepted') {
      state.failures = 0;
      state.blockedUntil = 0;
    } else if (outcome === 'failed') {
      const now = this.now();
      state.failures++;
      state.lastFailure = now;
      const over = state.failures - this.limits.freeFailures;
      if (over > 0) {
        const block = Math.min(
          this.limits.firstBlockMs * 2 ** Math.min(over - 1, 30),
          this.limits.maxBlockMs,
        );
        state.blockedUntil = now + block;
      }
    }
    if (state.pending === 0 && state.failures === 0) this.table.delete(key);
  }
}

/**
 * The unit a client is counted in: an IPv4 address, or the /64 of an IPv6 address (one subscriber's
 * network: anyone holding one holds 2^64 addresses).
 */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const zone = address.indexOf('%');
  const bare = zone < 0 ? address : address.slice(0, zone);
  const [head, tail] = bare.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  // `::` stands for as many zero groups as make eight (an embedded IPv4 tail sits past the first four).
  const zeros = tail === undefined ? 0 : Math.max(0, 8 - headGroups.length - tailGroups.length);
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  return groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, '').toLowerCase())
    .join(':');
}
