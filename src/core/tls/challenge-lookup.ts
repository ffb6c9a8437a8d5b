// ACME challenges this process does not hold, answered from where the cluster keeps them (distributed solving,
// scale.md §6.3): with several instances behind a load balancer, the CA's validation of an order placed by
// instance A may reach instance B. B then asks the shared storage (a worker through its primary). Only
// requests shaped like validations are looked up (an HTTP-01 path with a token of ACME's form; a TLS handshake
// offering acme-tls/1), a miss is remembered briefly, concurrent lookups of one key share one answer, and at
// most a few lookups run at a time and start per second: visitors cannot turn requests into a storage round
// trip each (a flood of made-up tokens may make a real validation miss; the manager's retry orders again).
import tls, { type SecureContext } from 'node:tls';
import { HTTP01_PREFIX, type PemPair } from './managed.js';

/** Where challenges of the whole cluster can be found. */
export interface ChallengeSource {
  /** The key authorization for an HTTP-01 token, or undefined. */
  http01(token: string): Promise<string | undefined>;
  /** The TLS-ALPN-01 certificate for a name, or undefined. */
  tlsAlpn01(name: string): Promise<PemPair | undefined>;
}

/** The longest a validation waits for a lookup; then it is answered as a miss. */
export const LOOKUP_TIMEOUT_MS = 2_000;
/** A miss is not looked up again for this long. */
const MISS_KEPT_MS = 3_000;
const MAX_MISSES_KEPT = 10_000;
/** Lookups running at once in this process; more are answered as misses. */
const MAX_LOOKUPS = 8;
/**
 * Lookups started per second in this process; more are answered as misses. A CA validates a challenge from a
 * few places at once (Let's Encrypt: about five), so this leaves room for several orders in the same second,
 * while a flood of made-up tokens costs Redis at most this much per process.
 */
const MAX_LOOKUPS_PER_SECOND = 20;
/** RFC 8555 §8.1: a token is base64url with at least 128 bits of entropy (22 characters). */
const TOKEN = /^[A-Za-z0-9_-]{22,256}$/;
const NAME = /^[a-z0-9*]([a-z0-9.-]{0,252})$/;

let source: ChallengeSource | undefined;
const misses = new Map<string, number>();
let second = 0;
let startedThisSecond = 0;
const running = new Map<string, Promise<unknown>>();

/** Installed by a process that serves in a cluster with a shared storage; undefined turns lookups off. */
export function setChallengeSource(s: ChallengeSource | undefined): void {
  source = s;
  misses.clear();
}

export function hasChallengeSource(): boolean {
  return source !== undefined;
}

/** The key authorization for an HTTP-01 request path from the cluster; undefined when not looked up at all. */
export function findHttp01(url: string): Promise<string | undefined> | undefined {
  const from = source;
  if (!from || !url.startsWith(HTTP01_PREFIX)) return undefined;
  const token = url.slice(HTTP01_PREFIX.length);
  if (!TOKEN.test(token)) return undefined;
  return lookup(`http-01 ${token}`, () => from.http01(token));
}

/** The TLS-ALPN-01 context for a name from the cluster, or undefined. */
export async function findAlpnChallenge(servername: string): Promise<SecureContext | undefined> {
  const from = source;
  const name = servername.toLowerCase();
  if (!from || !NAME.test(name)) return undefined;
  const pem = await lookup(`tls-alpn-01 ${name}`, () => from.tlsAlpn01(name));
  return pem && tls.createSecureContext({ key: pem.key, cert: pem.cert });
}

function lookup<T>(key: string, find: () => Promise<T | undefined>): Promise<T | undefined> {
  const missedAt = misses.get(key);
  if (missedAt !== undefined) {
    if (Date.now() - missedAt < MISS_KEPT_MS) return Promise.resolve(undefined);
    misses.delete(key);
  }
  const pending = running.get(key) as Promise<T | undefined> | undefined;
  if (pending) return pending;
  if (running.size >= MAX_LOOKUPS) return Promise.resolve(undefined);
  const now = Math.floor(Date.now() / 1000);
  if (now !== second) [second, startedThisSecond] = [now, 0];
  if (++startedThisSecond > MAX_LOOKUPS_PER_SECOND) return Promise.resolve(undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS);
  });
  const answer = Promise.race([find().catch(() => undefined), timeout]).then((found) => {
    clearTimeout(timer);
    running.delete(key);
    if (found === undefined) {
      if (misses.size >= MAX_MISSES_KEPT) misses.clear();
      misses.set(key, Date.now());
    }
    return found;
  });
  running.set(key, answer);
  return answer;
}
