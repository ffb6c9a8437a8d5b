// When to renew each certificate the manager serves, and when to ask its CA again: at a random time inside the
// window the CA suggests when it offers ACME Renewal Information (RFC 9773, ari.ts), else with a third of the
// lifetime left. The CA is asked right after a certificate is obtained or loaded, and again when its
// Retry-After has passed; the choice is kept in the certificate's .json, so that a restart keeps the time
// instead of drawing a new one. ARI only moves the renewal time: its failures never touch what is served, and
// are logged once per certificate.
import type { Logger } from '../../core/logger.js';
import type { Storage } from '../storage.js';
import {
  AriClient,
  ariCertificateId,
  chooseRenewalTime,
  DEFAULT_RETRY_AFTER_MS,
  type RenewalInfo,
} from './ari.js';
import type { Issued } from './issuer.js';
import { loadRenewalInfo, renewalTime, saveRenewalInfo, type SavedRenewalInfo } from './stored.js';

/** A CA without ARI is looked at again (its directory) a day later: it may have started offering it. */
const NO_ARI_RECHECK_MS = 24 * 3600_000;
/** After a failed fetch: a minute, doubling each time, at most the RFC's six hours. */
const FIRST_FAILURE_RETRY_MS = 60_000;
/**
 * The CA's time is followed, but no later than with this part of the lifetime left: a window at the very end
 * (a CA's mistake) would leave no time for retries before the certificate expires.
 */
const LATEST_RATIO_LEFT = 1 / 10;

type Validity = Pick<Issued, 'notBefore' | 'notAfter'>;

interface Tracked extends Validity {
  readonly ca: string;
  /** RFC 9773's identifier; undefined for a certificate without one (no AKI): never asked about. */
  readonly certId: string | undefined;
  /** The CA's last valid word on this certificate, and the time chosen in its window. */
  ari: SavedRenewalInfo | undefined;
  /** When to ask the CA next; undefined: not any more. */
  nextFetch: number | undefined;
  /** Reading the saved choice or asking the CA, now. */
  busy: boolean;
  failures: number;
}

export interface RenewalTimesOptions {
  readonly storage: Storage;
  /** -catimeout: the longest wait for one request to the CA. */
  readonly caTimeoutMs: number;
  readonly log: Logger;
  /** A renewal time or a fetch time changed: whoever keeps the timer looks again. */
  readonly changed: () => void;
  /** For tests of the choice; Math.random otherwise. */
  readonly random?: () => number;
}

function certIdOf(cert: string): string | undefined {
  try {
    return ariCertificateId(cert);
  } catch {
    return undefined;
  }
}

export class RenewalTimes {
  private readonly tracked = new Map<string, Tracked>();
  private readonly client: AriClient;
  private stopped = false;

  constructor(private readonly options: RenewalTimesOptions) {
    this.client = new AriClient(options.caTimeoutMs);
  }

  /** The subject is served with this certificate now: its saved choice is read, and the CA asked when due. */
  track(subject: string, ca: string, cert: Issued): void {
    const certId = certIdOf(cert.cert);
    const known = this.tracked.get(subject);
    if (known && known.ca === ca && known.certId === certId && known.notAfter === cert.notAfter) return;
    const entry: Tracked = {
      ca,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      certId,
      ari: undefined,
      nextFetch: certId === undefined ? undefined : Date.now(),
      busy: false,
      failures: 0,
    };
    this.tracked.set(subject, entry);
    if (certId !== undefined) void this.restoreThenFetch(subject, entry);
  }

  /** When the subject's certificate (`cert`, as served) is to be renewed. */
  renewAt(subject: string, cert: Validity): number {
    const entry = this.current(subject, cert);
    if (!entry?.ari) return renewalTime(cert);
    const latest = cert.notAfter - (cert.notAfter - cert.notBefore) * LATEST_RATIO_LEFT;
    return Math.min(entry.ari.renewAt, latest);
  }

  /** Whether renewAt comes from the CA's renewal information (for the log). */
  byAri(subject: string, cert: Validity): boolean {
    return this.current(subject, cert)?.ari !== undefined;
  }

  /** When the CA is to be asked again about the subject's certificate, if it is (and not being asked now). */
  nextFetch(subject: string): number | undefined {
    const entry = this.tracked.get(subject);
    return entry && !entry.busy ? entry.nextFetch : undefined;
  }

  /** Asks the CAs about every certificate whose Retry-After has passed (in the background). */
  fetchDue(): void {
    const now = Date.now();
    for (const [subject, entry] of this.tracked)
      if (entry.nextFetch !== undefined && entry.nextFetch <= now) void this.fetch(subject, entry);
  }

  stop(): void {
    this.stopped = true;
    this.client.stop();
  }

  private current(subject: string, cert: Validity): Tracked | undefined {
    const entry = this.tracked.get(subject);
    return entry?.notAfter === cert.notAfter && entry.notBefore === cert.notBefore ? entry : undefined;
  }

  /** A certificate loaded from storage may have its choice saved (a restart): kept, and asked about when due. */
  private async restoreThenFetch(subject: string, entry: Tracked): Promise<void> {
    entry.busy = true;
    const saved = await loadRenewalInfo(this.options.storage, entry.ca, subject).catch(() => undefined);
    entry.busy = false;
    if (this.tracked.get(subject) !== entry) return;
    if (saved && saved.certId === entry.certId) {
      entry.ari = saved;
      entry.nextFetch = saved.nextFetch;
    }
    if (entry.nextFetch !== undefined && entry.nextFetch <= Date.now()) await this.fetch(subject, entry);
    else this.options.changed();
  }

  private async fetch(subject: string, entry: Tracked): Promise<void> {
    if (entry.busy || this.stopped || entry.certId === undefined) return;
    // RFC 9773 §4.3: no more questions about an expired certificate.
    if (Date.now() >= entry.notAfter) {
      entry.nextFetch = undefined;
      return;
    }
    entry.busy = true;
    try {
      const info = await this.client.renewalInfo(entry.ca, entry.certId);
      if (this.tracked.get(subject) !== entry) return;
      if (info === 'none') this.noAri(subject, entry);
      else await this.adopt(subject, entry, entry.certId, info);
    } catch (err) {
      if (this.tracked.get(subject) === entry && !this.stopped) this.failed(subject, entry, err);
    } finally {
      entry.busy = false;
      if (this.tracked.get(subject) === entry && !this.stopped) this.options.changed();
    }
  }

  private noAri(subject: string, entry: Tracked): void {
    this.options.log.debug(
      { subject, ca: entry.ca },
      'the CA offers no renewal information (ARI): renewing with a third of the lifetime left',
    );
    entry.ari = undefined;
    entry.failures = 0;
    entry.nextFetch = Date.now() + NO_ARI_RECHECK_MS;
  }

  private async adopt(subject: string, entry: Tracked, certId: string, info: RenewalInfo): Promise<void> {
    const now = Date.now();
    const known = entry.ari;
    // The same window keeps the time chosen in it: asking again must not draw again.
    const sameWindow = known?.windowStart === info.window.start && known.windowEnd === info.window.end;
    const renewAt =
      known && sameWindow ? known.renewAt : chooseRenewalTime(info.window, now, this.options.random);
    entry.ari = {
      certId,
      windowStart: info.window.start,
      windowEnd: info.window.end,
      renewAt,
      nextFetch: now + info.retryAfterMs,
      explanationUrl: info.explanationUrl,
    };
    entry.nextFetch = entry.ari.nextFetch;
    entry.failures = 0;
    if (!sameWindow)
      this.options.log.info(
        {
          subject,
          window: `${new Date(info.window.start).toISOString()} - ${new Date(info.window.end).toISOString()}`,
          renewAt: new Date(this.renewAt(subject, entry)).toISOString(),
          ...(info.explanationUrl !== undefined && { explanation: info.explanationUrl }),
        },
        'renewal time from the CA (ARI)',
      );
    await saveRenewalInfo(this.options.storage, entry.ca, subject, entry.ari).catch((err: unknown) =>
      this.options.log.debug({ err, subject }, 'saving the renewal information failed'),
    );
  }

  /** Logged once per certificate (at info), then at debug: a CA whose ARI is broken must not fill the log. */
  private failed(subject: string, entry: Tracked, err: unknown): void {
    entry.failures++;
    const message = `asking the CA when to renew (ARI) failed: ${(err as Error).message}`;
    const fields = { subject, ca: entry.ca, attempt: entry.failures };
    if (entry.failures === 1) this.options.log.info(fields, message);
    else this.options.log.debug(fields, message);
    const backoff = FIRST_FAILURE_RETRY_MS * 2 ** (entry.failures - 1);
    entry.nextFetch = Date.now() + Math.min(backoff, DEFAULT_RETRY_AFTER_MS);
  }
}
