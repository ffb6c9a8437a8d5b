// Automatic HTTPS in a cluster worker (tls.md §4.4): the primary's updates land in this process's own maps,
// exactly as the single-process sink puts them; and this process's certificate requests (on demand at a
// handshake, tunnel claims) go to the primary, where the certificate manager runs.
import { localSink } from '../certs/sink.js';
import type { Logger } from '../core/logger.js';
import type { AcmeChallenge, CertificateRequests } from '../core/tls/managed.js';
import type { CertificateEntry, CertificateUpdate, ToPrimary } from './messages.js';

/** Longest wait for the primary's answer to an on-demand request; then the handshake gets no certificate. */
export const NEED_TIMEOUT_MS = 30_000;

export function applyCertificateUpdate(update: CertificateUpdate): Promise<void> {
  switch (update.op) {
    case 'putCertificate': {
      const { subject, pem, notAfter } = update.entry;
      return localSink.putCertificate(subject, pem, notAfter);
    }
    case 'putChallenge':
      return localSink.putChallenge(update.challenge);
    case 'dropChallenge':
      return localSink.dropChallenge(update.challenge);
  }
}

/**
 * What the other workers have: applied before this worker's first config, so it never serves without it. The
 * maps change synchronously (the sink's promises only report), so the next message already sees all of it.
 */
export function applyCertificateSnapshot(
  certificates: readonly CertificateEntry[],
  challenges: readonly AcmeChallenge[],
  log: Logger,
): void {
  const updates: CertificateUpdate[] = [
    ...certificates.map((entry): CertificateUpdate => ({ op: 'putCertificate', entry })),
    ...challenges.map((challenge): CertificateUpdate => ({ op: 'putChallenge', challenge })),
  ];
  const failed = (err: unknown, update: CertificateUpdate) =>
    log.error({ err, op: update.op }, 'certificate from the primary not applied');
  for (const update of updates) {
    try {
      applyCertificateUpdate(update).catch((err: unknown) => failed(err, update));
    } catch (err) {
      failed(err, update);
    }
  }
}

/** Sends to the primary; false when the channel is gone (the primary exited). Never throws. */
export function sendToPrimary(msg: ToPrimary): boolean {
  if (!process.connected || !process.send) return false;
  // With a callback, a channel that closes meanwhile is reported to it instead of as an 'error' event.
  return process.send(msg, undefined, undefined, () => {});
}

/** CertificateRequests of a worker: each goes to the primary. */
export class RequestsToPrimary implements CertificateRequests {
  private ids = 0;
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  /** One question per name at a time: concurrent handshakes for a name share the answer. */
  private readonly byName = new Map<string, Promise<boolean>>();

  constructor(private readonly timeoutMs = NEED_TIMEOUT_MS) {
    // No primary, no answers: nobody waits for one.
    process.once('disconnect', () => {
      for (const id of [...this.waiting.keys()]) this.answer(id, false);
    });
  }

  need(name: string): Promise<boolean> {
    const key = name.toLowerCase();
    const asked = this.byName.get(key);
    if (asked) return asked;
    const id = ++this.ids;
    const answer = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => this.answer(id, false), this.timeoutMs);
      timer.unref();
      this.waiting.set(id, (ok) => {
        clearTimeout(timer);
        this.byName.delete(key);
        resolve(ok);
      });
    });
    this.byName.set(key, answer);
    if (!sendToPrimary({ nc: 'certNeed', id, name })) this.answer(id, false);
    return answer;
  }

  claimed(name: string): void {
    sendToPrimary({ nc: 'certClaimed', name });
  }

  /** The primary's answer (or a timeout's, or a lost primary's). */
  answer(id: number, ok: boolean): void {
    const settle = this.waiting.get(id);
    this.waiting.delete(id);
    settle?.(ok);
  }
}
