// What the certificate manager needs from the other instances of a cluster (instances sharing a storage): to
// tell them that a certificate is in storage, to hear the same from them (a renewal by instance A reaches B's
// handshakes at once instead of at B's next check), to hear when it may have missed something (its link to
// the shared storage came back), and, for certificates on demand, counters that every instance shares.
import type { OnDemandCounters } from './on-demand.js';

export interface CertificatePeers {
  /** The subject's certificate from `ca` was just stored here (best effort: a peer offline catches up later). */
  announce(ca: string, subject: string): void;
  /** Another instance stored the subject's certificate from `ca`. */
  onAnnounce(listener: (ca: string, subject: string) => void): void;
  /** Announcements may have been missed (the link came back): look at storage again. */
  onResync(listener: () => void): void;
  /** Whether an order failed because the shared storage was unreachable (retried as soon as it is back). */
  isOutage(err: unknown): boolean;
  /** max_certs and the order throttle counted for the whole cluster. */
  readonly onDemand: OnDemandCounters | undefined;
}
