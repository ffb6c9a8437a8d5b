// Who may have a certificate on demand (at its first handshake), so that a stranger cannot make the server
// order certificates for any name it likes (Caddy 1's open `max_certs`, tls.md §1.9): the site's `ask` URL
// must answer 2xx, or (tunnel sites) an authenticated tunnel client must hold the name; names that are no
// public host names never qualify; `max_certs` caps a site; a name that failed waits before another try; and
// at most 10 orders a minute go out for the whole process (certmagic's throttle). With a shared storage,
// max_certs and the throttle count for the whole cluster (OnDemandCounters).
import http from '../../core/node-http.js';
import https from 'node:https';
import { isIP } from 'node:net';
import { isInternalHost } from '../../core/tls/plan.js';
import type { OnDemandRule } from './plan.js';

/** Caddy's `ask` client: 10 s, no redirects followed. */
const ASK_TIMEOUT_MS = 10_000;
/** A claim lets its name have certificates (and renewals) this long after the client went away. */
const CLAIM_KEPT_MS = 7 * 24 * 3600 * 1000;
/** After a failed order for a name on demand, the next handshakes do not order again for this long. */
const FAILURE_BACKOFF_MS = 5 * 60 * 1000;
const THROTTLE_WINDOW_MS = 60_000;
const THROTTLE_MAX = 10;

export type Refusal = string;

/** A public DNS name (RFC 1123 labels), not an IP, not an internal name such as *.localhost. */
export function qualifiesForPublicCert(name: string): boolean {
  if (name.length > 253 || isIP(name) !== 0 || isInternalHost(name)) return false;
  return name.split('.').every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label));
}

/**
 * The limits counted for the whole cluster (instances sharing a storage). Any failure (the shared store is
 * unreachable) falls back to this process's own counts.
 */
export interface OnDemandCounters {
  /** How many names of the site have certificates on demand, and whether `name` is one of them. */
  issued(site: string, name: string): Promise<{ count: number; has: boolean }>;
  markIssued(site: string, name: string): Promise<void>;
  /** Takes one of `max` order slots of the last `windowMs`; false when all are taken. */
  takeOrderSlot(windowMs: number, max: number): Promise<boolean>;
}

export class OnDemandGate {
  constructor(private readonly shared?: OnDemandCounters) {}

  private readonly claims = new Map<string, number>();
  private readonly failedAt = new Map<string, number>();
  private readonly recentOrders: number[] = [];
  /** Names issued on demand, per site (for max_certs). */
  private readonly issued = new Map<string, Set<string>>();

  /** An authenticated tunnel client holds the name now. */
  claim(name: string): void {
    this.claims.set(name, Date.now());
  }

  claimedRecently(name: string): boolean {
    const at = this.claims.get(name);
    return at !== undefined && Date.now() - at < CLAIM_KEPT_MS;
  }

  /** Undefined when the name may be ordered now; otherwise why not (for the log). */
  async refusal(name: string, rule: OnDemandRule): Promise<Refusal | undefined> {
    if (!qualifiesForPublicCert(name)) return 'not a public host name';
    const failed = this.failedAt.get(name);
    if (failed !== undefined && Date.now() - failed < FAILURE_BACKOFF_MS)
      return 'an order for it failed less than 5 minutes ago';
    if (rule.maxCerts !== undefined) {
      const local = this.issued.get(rule.site);
      const { count, has } = (await this.shared?.issued(rule.site, name).catch(() => undefined)) ?? {
        count: local?.size ?? 0,
        has: local?.has(name) ?? false,
      };
      if (count >= rule.maxCerts && !has) return `max_certs ${rule.maxCerts} reached for ${rule.site}`;
    }
    const allowed =
      (rule.byClaim && this.claimedRecently(name)) || (rule.ask && (await askAllows(rule.ask, name)));
    if (!allowed) return rule.ask ? `${rule.ask} did not allow it` : 'no tunnel client has claimed it';
    const now = Date.now();
    while (this.recentOrders.length > 0 && now - this.recentOrders[0] > THROTTLE_WINDOW_MS)
      this.recentOrders.shift();
    const slot = await this.shared?.takeOrderSlot(THROTTLE_WINDOW_MS, THROTTLE_MAX).catch(() => undefined);
    if (slot === false || (slot === undefined && this.recentOrders.length >= THROTTLE_MAX))
      return `throttled: ${THROTTLE_MAX} orders in the last minute`;
    this.recentOrders.push(now);
    return undefined;
  }

  /** The name has a certificate (obtained, or found in storage) for the rule's site. */
  issuedFor(name: string, rule: OnDemandRule): void {
    this.failedAt.delete(name);
    let set = this.issued.get(rule.site);
    if (!set) this.issued.set(rule.site, (set = new Set()));
    set.add(name);
    this.shared?.markIssued(rule.site, name).catch(() => undefined);
  }

  failed(name: string): void {
    this.failedAt.set(name, Date.now());
  }
}

/** GET <ask>?domain=<name>: a 2xx allows it; anything else (a redirect, an error, no answer) does not. */
function askAllows(ask: string, name: string): Promise<boolean> {
  const url = new URL(ask);
  url.searchParams.set('domain', name);
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve) => {
    const req = get(url, { timeout: ASK_TIMEOUT_MS }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 300);
    });
    req.on('timeout', () => req.destroy(new Error('ask timed out')));
    req.on('error', () => resolve(false));
  });
}
