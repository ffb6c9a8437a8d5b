// Deciding whether an Authorization header lets a request through one or more basicauth rules.
//
// A browser sends the same header with every request, so a header a rule accepted is remembered for a few
// minutes and passes again without a password check (bcrypt costs tens of milliseconds). Remembered are
// only HMACs of accepted headers under a per-config random key: nothing in memory is a password or a fast
// unsalted hash of one, and a new config (a changed htpasswd) starts afresh. Concurrent requests with the
// same header (a page's parallel asset requests right after login) share one check. Failed checks count
// against the client's address (throttle.ts).
import { createHmac, randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { HttpError } from '../../core/errors.js';
import { sameSecret, type PasswordCheck } from './htpasswd.js';
import { FailureThrottle, type Outcome } from './throttle.js';

export interface CheckRule {
  /** Position of the rule in its config: what the remembered headers refer to. */
  readonly index: number;
  readonly user: string;
  readonly check: PasswordCheck;
}

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

const REMEMBER_MS = 5 * 60_000;
const REMEMBER_MAX = 1024;
/** How long a shut-out address waits for its 429. */
const TARPIT_MS = 1000;

export class CredentialChecker {
  private readonly key = randomBytes(32);
  /** `<rule index>:<HMAC of the header>` → when the rule accepted it. Oldest first. */
  private readonly accepted = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<number>>();
  private readonly throttle: FailureThrottle;

  constructor(throttle = new FailureThrottle()) {
    this.throttle = throttle;
  }

  /**
   * The rule among `rules` (the ones whose paths match) that accepts the credentials, or undefined.
   * Throws HttpError 429 when the address is shut out, 503 when password checks are overloaded.
   */
  async accepts(
    header: string,
    creds: Credentials,
    rules: readonly CheckRule[],
    address: string,
  ): Promise<CheckRule | undefined> {
    const id = createHmac('sha256', this.key).update(header).digest('base64');
    for (const rule of rules) if (this.remembered(`${rule.index}:${id}`)) return rule;
    const flightKey = `${id}|${rules.map((r) => r.index).join(',')}`;
    let flight = this.inFlight.get(flightKey);
    if (!flight) {
      flight = this.check(id, creds, rules, address).finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, flight);
    }
    const index = await flight;
    return rules.find((r) => r.index === index);
  }

  private async check(
    id: string,
    creds: Credentials,
    rules: readonly CheckRule[],
    address: string,
  ): Promise<number> {
    const wait = this.throttle.admit(address);
    if (wait > 0) {
      // The answer itself is slowed down too: a client that ignores Retry-After gets one answer a second
      // per connection, not thousands.
      await delay(TARPIT_MS);
      throw new HttpError(429, `BasicAuth: too many failed logins from ${address}`, {
        headers: { 'Retry-After': String(wait) },
      });
    }
    let outcome: Outcome = 'unchecked';
    try {
      for (const rule of rules) {
        // Both checks always run, so timing does not tell a wrong user from a wrong password.
        const userOk = sameSecret(creds.user, rule.user);
        const passOk = await rule.check(creds.password);
        if (userOk && passOk) {
          this.remember(`${rule.index}:${id}`);
          outcome = 'accepted';
          return rule.index;
        }
      }
      outcome = 'failed';
      return -1;
    } finally {
      this.throttle.done(address, outcome);
    }
  }

  private remembered(key: string): boolean {
    const at = this.accepted.get(key);
    if (at === undefined) return false;
    if (Date.now() - at > REMEMBER_MS) {
      this.accepted.delete(key);
      return false;
    }
    return true;
  }

  private remember(key: string): void {
    this.accepted.delete(key);
    if (this.accepted.size >= REMEMBER_MAX) this.accepted.delete(this.accepted.keys().next().value!);
    this.accepted.set(key, Date.now());
  }
}
