// The certificate manager of automatic HTTPS (certmagic's role): keeps a certificate for every name the config
// serves from an ACME CA. It never makes the server wait for the CA: before a config serves, certificates
// already in storage are pushed to the server processes; missing ones are obtained in the background while
// everything else serves, and a failing name is retried with backoff and logged. Renewals run in the background
// when RenewalTimes says (in the window of the CA's renewal information, else with a third of the lifetime
// left). It runs in one process only (the cluster primary, or the single server process); an order holds a
// storage lock, so two processes or instances sharing the storage never order the same certificate at once,
// and whoever waited finds the other's certificate in storage.
import type { Logger } from '../../core/logger.js';
import type { CertificateRequests } from '../../core/tls/managed.js';
import type { CertificateSink } from '../sink.js';
import type { Storage } from '../storage.js';
import { dnsExecHook } from './dns-exec.js';
import { Issuer, type ChallengeType, type Issued } from './issuer.js';
import { recordCertificate, recordOrder } from './metrics.js';
import { OnDemandGate } from './on-demand.js';
import type { CertificatePeers } from './peers.js';
import { onDemandRuleFor, type AcmeFlags, type AcmePlan, type OrderSettings } from './plan.js';
import { describeDelay, retryDelay } from './retry.js';
import { RenewalTimes } from './renewal-times.js';
import { loadStored, orderLockName, renewalTime, saveIssued } from './stored.js';

/** The longest wait between two looks at what needs renewing (or asking the CA about). */
const CHECK_EVERY_MS = 10 * 60 * 1000;

interface Held {
  readonly settings: OrderSettings;
  readonly notBefore: number;
  readonly notAfter: number;
}

interface Retry {
  attempt: number;
  timer: NodeJS.Timeout | undefined;
}

export interface ManagerOptions {
  readonly storage: Storage;
  readonly sink: CertificateSink;
  readonly flags: AcmeFlags;
  readonly log: Logger;
  /** The other instances sharing the storage (a cluster); undefined with a storage of one's own. */
  readonly peers?: CertificatePeers;
}

export class CertificateManager implements CertificateRequests {
  private plan: AcmePlan = { subjects: [], onDemand: [] };
  /** Certificates the server processes have, by subject. */
  private readonly held = new Map<string, Held>();
  /** Orders running now, by subject: a second asker waits for the same one. */
  private readonly running = new Map<string, Promise<boolean>>();
  private readonly retries = new Map<string, Retry>();
  private readonly issuers = new Map<string, Issuer>();
  private readonly gate: OnDemandGate;
  /** On-demand decisions running now, by name. */
  private readonly needs = new Map<string, Promise<boolean>>();
  /** The last failure of each subject's order (a rate-limit answer sets a longer wait). */
  private readonly lastError = new Map<string, unknown>();
  private readonly renewals: RenewalTimes;
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ManagerOptions) {
    this.renewals = new RenewalTimes({
      storage: options.storage,
      caTimeoutMs: options.flags.caTimeoutMs,
      log: options.log,
      changed: () => this.scheduleCheck(),
    });
    this.gate = new OnDemandGate(options.peers?.onDemand);
    options.peers?.onAnnounce((ca, subject) => void this.reload(ca, subject));
    options.peers?.onResync(() => {
      for (const subject of new Set([...this.plan.subjects.map((s) => s.subject), ...this.held.keys()]))
        void this.reload(undefined, subject).then(() => this.retryAfterOutage(subject));
    });
  }

  /** An order that failed only because the shared storage was away goes again now, not after its backoff. */
  private retryAfterOutage(subject: string): void {
    const retry = this.retries.get(subject);
    const settings =
      this.held.get(subject)?.settings ?? this.plan.subjects.find((s) => s.subject === subject);
    if (!retry?.timer || !settings || !this.options.peers?.isOutage(this.lastError.get(subject))) return;
    clearTimeout(retry.timer);
    retry.timer = undefined;
    this.startOrder(subject, settings);
  }

  /**
   * Another instance stored the subject's certificate (or may have: `ca` undefined after a reconnect): serve
   * it here too when it is newer than what is served, and drop a retry that has nothing left to do.
   */
  private async reload(ca: string | undefined, subject: string): Promise<void> {
    const held = this.held.get(subject);
    const settings = held?.settings ?? this.plan.subjects.find((s) => s.subject === subject);
    if (this.stopped || !settings || (ca !== undefined && settings.ca !== ca)) return;
    const stored = await this.loadValid(settings, subject).catch((err: unknown) => {
      this.options.log.warn({ err, subject }, 'reading a certificate another instance stored failed');
      return undefined;
    });
    const current = this.held.get(subject);
    if (!stored || (current?.settings.ca === settings.ca && stored.notAfter <= current.notAfter)) return;
    await this.publish(subject, settings, stored);
    this.options.log.info({ subject }, 'certificate from another instance loaded');
    const retry = this.retries.get(subject);
    if (retry?.timer && Date.now() < renewalTime(stored)) {
      clearTimeout(retry.timer);
      this.retries.delete(subject);
    }
  }

  /**
   * Before a config serves: the certificates its names already have in storage go to the server processes,
   * so they serve at once. Never contacts the CA.
   */
  async prepare(plan: AcmePlan): Promise<void> {
    await Promise.all(
      plan.subjects.map(async (s) => {
        if (this.held.get(s.subject)?.settings.ca === s.ca) return;
        const stored = await this.loadValid(s, s.subject).catch((err: unknown) => {
          this.options.log.error({ err, subject: s.subject }, 'reading a stored certificate failed');
          return undefined;
        });
        if (stored) await this.publish(s.subject, s, stored);
      }),
    );
  }

  /** Once a config serves: obtain what its names lack, in the background, and keep them renewed. */
  commit(plan: AcmePlan): void {
    this.plan = plan;
    // Missing, or from another CA than the config now names (`tls { ca }` changed).
    for (const s of plan.subjects)
      if (this.held.get(s.subject)?.settings.ca !== s.ca) this.startOrder(s.subject, s);
    this.scheduleCheck();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.checkTimer);
    this.renewals.stop();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * A handshake found no certificate for a name of an on-demand site. Handshakes for one name (from every
   * worker) share one decision: `ask` is asked once, and one order runs.
   */
  need(name: string): Promise<boolean> {
    const lower = name.toLowerCase().replace(/\.$/, '');
    let pending = this.needs.get(lower);
    if (!pending) {
      pending = this.decideAndOrder(lower).finally(() => this.needs.delete(lower));
      this.needs.set(lower, pending);
    }
    return pending;
  }

  private async decideAndOrder(lower: string): Promise<boolean> {
    if (this.held.has(lower)) return true;
    const rule = onDemandRuleFor(this.plan, lower);
    if (!rule || this.stopped) return false;
    const running = this.running.get(lower);
    if (running) return running;
    const stored = await this.loadValid(rule, lower).catch(() => undefined);
    if (stored) {
      this.gate.issuedFor(lower, rule);
      await this.publish(lower, rule, stored);
      return true;
    }
    const refusal = await this.gate.refusal(lower, rule);
    if (refusal) {
      this.options.log.warn({ name: lower, site: rule.site }, `no certificate on demand: ${refusal}`);
      return false;
    }
    // Both challenges before giving up: a name on demand waits 5 minutes after a failure.
    const ok = (await this.order(lower, rule, 0)) || (!rule.dns && (await this.order(lower, rule, 1)));
    if (ok) this.gate.issuedFor(lower, rule);
    // The 5-minute wait is for names the CA refused, not for a shared storage that was away a moment.
    else if (!this.options.peers?.isOutage(this.lastError.get(lower))) this.gate.failed(lower);
    return ok;
  }

  /** A tunnel client holds the name: it may have a certificate, and gets one now if its site is on demand. */
  claimed(name: string): void {
    const lower = name.toLowerCase();
    this.gate.claim(lower);
    const rule = onDemandRuleFor(this.plan, lower);
    if (!rule?.byClaim || this.held.has(lower)) return;
    this.need(lower).catch((err: unknown) =>
      this.options.log.error({ err, name: lower }, 'certificate for a claimed tunnel name failed'),
    );
  }

  /** Starts an order (or a renewal) in the background, retried with backoff until it succeeds. */
  private startOrder(subject: string, settings: OrderSettings): void {
    if (this.stopped || this.running.has(subject) || this.retries.get(subject)?.timer) return;
    const retry = this.retries.get(subject) ?? { attempt: 0, timer: undefined };
    this.retries.set(subject, retry);
    void this.order(subject, settings, retry.attempt).then((ok) => {
      if (ok) {
        this.retries.delete(subject);
        return;
      }
      if (this.stopped || !this.wanted(subject)) {
        this.retries.delete(subject);
        return;
      }
      retry.attempt++;
      const delay = retryDelay(retry.attempt, this.lastError.get(subject));
      this.options.log.warn({ subject, attempt: retry.attempt }, `retrying in ${describeDelay(delay)}`);
      retry.timer = setTimeout(() => {
        retry.timer = undefined;
        this.startOrder(subject, settings);
      }, delay);
      retry.timer.unref();
    });
  }

  /** Still in the config (a subject), or held on demand under a rule that still exists. */
  private wanted(subject: string): boolean {
    return (
      this.plan.subjects.some((s) => s.subject === subject) ||
      onDemandRuleFor(this.plan, subject) !== undefined
    );
  }

  /** One order, deduplicated per subject; true once the certificate is served. Logs its failure. */
  private order(subject: string, settings: OrderSettings, attempt: number): Promise<boolean> {
    let run = this.running.get(subject);
    if (!run) {
      run = this.orderLocked(subject, settings, attempt).then(
        () => true,
        (err: unknown) => {
          recordOrder(false);
          this.lastError.set(subject, err);
          this.options.log.error(
            { subject, ca: settings.ca, attempt: attempt + 1 },
            `obtaining a certificate failed: ${(err as Error).message}`,
          );
          return false;
        },
      );
      const done = run.finally(() => {
        this.running.delete(subject);
        this.scheduleCheck();
      });
      this.running.set(subject, done);
      run = done;
    }
    return run;
  }

  private async orderLocked(subject: string, settings: OrderSettings, attempt: number): Promise<void> {
    // What was served before the wait: another instance's certificate may be served by now (reload).
    const held = this.held.get(subject);
    const release = await this.options.storage.lock(orderLockName(settings.ca, subject));
    try {
      // Another process or instance may have obtained (or renewed) it while we waited for the lock.
      const stored = await this.loadValid(settings, subject);
      const newer = (c: Issued) => !held || held.settings.ca !== settings.ca || c.notAfter > held.notAfter;
      if (stored && Date.now() < renewalTime(stored) && newer(stored)) {
        await this.publish(subject, settings, stored);
        return;
      }
      if (this.stopped) throw new Error('stopping');
      const challenge = this.challengeFor(settings, attempt);
      const log = this.options.log;
      log.info(
        {
          subject,
          ca: settings.ca,
          challenge,
          ...(held && { due: this.renewals.byAri(subject, held) ? 'ARI' : 'lifetime' }),
        },
        held ? 'renewing certificate' : 'obtaining certificate',
      );
      const started = Date.now();
      const issued = await this.issuer(settings).obtain({
        subject,
        keyType: settings.keyType,
        challenge,
        dns: settings.dns ? dnsExecHook(settings.dns) : undefined,
      });
      recordOrder(true);
      await saveIssued(this.options.storage, settings.ca, subject, issued);
      this.options.peers?.announce(settings.ca, subject);
      await this.publish(subject, settings, issued);
      log.info(
        { subject, notAfter: new Date(issued.notAfter).toISOString(), ms: Date.now() - started },
        held ? 'certificate renewed' : 'certificate obtained',
      );
    } finally {
      await release();
    }
  }

  /** DNS-01 when there is a hook; else HTTP-01 and TLS-ALPN-01 in turn across attempts (unless disabled). */
  private challengeFor(settings: OrderSettings, attempt: number): ChallengeType {
    if (settings.dns) return 'dns-01';
    const { disableHttpChallenge, disableTlsAlpnChallenge } = this.options.flags;
    const types: ChallengeType[] = [];
    if (!disableHttpChallenge) types.push('http-01');
    if (!disableTlsAlpnChallenge) types.push('tls-alpn-01');
    if (types.length === 0)
      throw new Error('both challenges are disabled, and the site has no DNS hook (tls { dns exec … })');
    return types[attempt % types.length];
  }

  private issuer(settings: OrderSettings): Issuer {
    const key = `${settings.ca}\0${settings.email ?? ''}`;
    let issuer = this.issuers.get(key);
    if (!issuer) {
      issuer = new Issuer(
        { ca: settings.ca, email: settings.email, caTimeoutMs: this.options.flags.caTimeoutMs },
        this.options.storage,
        this.options.sink,
      );
      this.issuers.set(key, issuer);
    }
    return issuer;
  }

  /** A stored certificate that is still valid, or undefined. */
  private async loadValid(settings: OrderSettings, subject: string): Promise<Issued | undefined> {
    const stored = await loadStored(this.options.storage, settings.ca, subject);
    return stored && stored.notAfter > Date.now() ? stored : undefined;
  }

  private async publish(subject: string, settings: OrderSettings, issued: Issued): Promise<void> {
    await this.options.sink.putCertificate(subject, issued, issued.notAfter);
    this.held.set(subject, { settings, notBefore: issued.notBefore, notAfter: issued.notAfter });
    recordCertificate(subject, issued.notAfter);
    this.renewals.track(subject, settings.ca, issued);
    this.scheduleCheck();
  }

  /**
   * Wakes at the next renewal time or the next time to ask a CA about one (at most CHECK_EVERY_MS away), and
   * does what is due.
   */
  private scheduleCheck(): void {
    if (this.stopped) return;
    clearTimeout(this.checkTimer);
    let next = Date.now() + CHECK_EVERY_MS;
    for (const [subject, h] of this.held) {
      if (!this.running.has(subject) && !this.retries.get(subject)?.timer)
        next = Math.min(next, this.renewals.renewAt(subject, h));
      next = Math.min(next, this.renewals.nextFetch(subject) ?? next);
    }
    this.checkTimer = setTimeout(() => this.checkDue(), Math.max(1000, next - Date.now()));
    this.checkTimer.unref();
  }

  private checkDue(): void {
    const now = Date.now();
    this.renewals.fetchDue();
    for (const [subject, h] of this.held)
      if (this.renewals.renewAt(subject, h) <= now && this.wanted(subject))
        this.startOrder(subject, h.settings);
    this.scheduleCheck();
  }
}
