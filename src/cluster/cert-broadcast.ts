// Automatic HTTPS across workers, the primary's side (tls.md §4.4). The certificate manager runs in the
// primary, the only ACME client; this is its CertificateSink. Every update goes to every worker that serves, and
// resolves once each one has applied it: a challenge must be answerable by whichever worker the CA's validation
// requests reach before the CA is told to validate. A worker that exits meanwhile counts as done (it serves
// nothing any more); one that does not answer at all fails the update after a bound. The primary keeps what is
// current (certificates by subject, pending challenges), so a new or replacement worker gets all of it before
// its first config, and never serves without the certificates the others have.
// The other direction: workers ask for certificates on demand and report tunnel claims; the owner of the engine
// (the certificate manager) answers through the handler it sets.
import type { Worker } from 'node:cluster';
import type { CertificateSink } from '../certs/sink.js';
import type { Logger } from '../core/logger.js';
import type { AcmeChallenge, CertificateRequests, PemPair } from '../core/tls/managed.js';
import {
  isOurs,
  type CertificateEntry,
  type CertificateUpdate,
  type ToPrimary,
  type ToWorker,
} from './messages.js';

/** Longest wait for every worker to acknowledge an update. */
export const CERT_ACK_TIMEOUT_MS = 10_000;

interface PendingUpdate {
  readonly what: string;
  /** Workers yet to acknowledge. */
  readonly waiting: Set<Worker>;
  readonly errors: string[];
  readonly settle: () => void;
}

export class CertificateBroadcast implements CertificateSink {
  private readonly certificates = new Map<string, CertificateEntry>();
  private readonly challenges = new Map<string, AcmeChallenge>();
  /** Workers that have had the snapshot: every later update goes to them. */
  private readonly synced = new Set<Worker>();
  private readonly pending = new Map<number, PendingUpdate>();
  private ids = 0;
  private requests: CertificateRequests | undefined;

  constructor(
    private readonly log: Logger,
    private readonly ackTimeoutMs = CERT_ACK_TIMEOUT_MS,
  ) {}

  putCertificate(subject: string, pem: PemPair, notAfter: number): Promise<void> {
    const entry: CertificateEntry = { subject, pem: { key: pem.key, cert: pem.cert }, notAfter };
    this.certificates.set(subject.toLowerCase(), entry);
    return this.broadcast({ op: 'putCertificate', entry }, `certificate for ${subject}`);
  }

  putChallenge(challenge: AcmeChallenge): Promise<void> {
    const plain = plainChallenge(challenge);
    this.challenges.set(challengeKey(plain), plain);
    return this.broadcast({ op: 'putChallenge', challenge: plain }, describe(plain));
  }

  dropChallenge(challenge: AcmeChallenge): Promise<void> {
    const plain = plainChallenge(challenge);
    this.challenges.delete(challengeKey(plain));
    return this.broadcast({ op: 'dropChallenge', challenge: plain }, `dropping ${describe(plain)}`);
  }

  /** Who answers the workers' requests (on demand, tunnel claims). Without one, every need is refused. */
  setRequests(requests: CertificateRequests | undefined): void {
    this.requests = requests;
  }

  /**
   * A new worker is ready for orders: it gets what is current now, then every later update (so nothing falls
   * between the two), and its requests are answered. Called before its first prepare.
   */
  attach(worker: Worker): void {
    if (worker.isDead() || !worker.isConnected()) return;
    worker.on('message', (msg: unknown) => {
      if (isOurs<ToPrimary>(msg)) this.onMessage(worker, msg);
    });
    const gone = () => this.detach(worker);
    worker.once('disconnect', gone);
    worker.once('exit', gone);
    send(worker, {
      nc: 'certsSnapshot',
      certificates: [...this.certificates.values()],
      challenges: [...this.challenges.values()],
    });
    this.synced.add(worker);
  }

  private detach(worker: Worker): void {
    this.synced.delete(worker);
    for (const update of this.pending.values()) this.acknowledged(update, worker);
  }

  private broadcast(update: CertificateUpdate, what: string): Promise<void> {
    const targets = [...this.synced].filter((w) => w.isConnected());
    if (targets.length === 0) return Promise.resolve();
    const id = ++this.ids;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const pids = [...pendingUpdate.waiting].map((w) => w.process.pid).join(', ');
        reject(new Error(`${what}: worker(s) ${pids} did not acknowledge within ${this.ackTimeoutMs} ms`));
      }, this.ackTimeoutMs);
      const pendingUpdate: PendingUpdate = {
        what,
        waiting: new Set(targets),
        errors: [],
        settle: () => {
          clearTimeout(timer);
          this.pending.delete(id);
          if (pendingUpdate.errors.length === 0) resolve();
          else reject(new Error(`${what}: ${pendingUpdate.errors.join('; ')}`));
        },
      };
      this.pending.set(id, pendingUpdate);
      for (const worker of targets) send(worker, { nc: 'certs', id, update });
    });
  }

  private acknowledged(update: PendingUpdate, worker: Worker): void {
    if (update.waiting.delete(worker) && update.waiting.size === 0) update.settle();
  }

  private onMessage(worker: Worker, msg: ToPrimary): void {
    switch (msg.nc) {
      case 'certsApplied': {
        const update = this.pending.get(msg.id);
        if (!update) return;
        if (msg.error) update.errors.push(`worker ${worker.process.pid}: ${msg.error}`);
        this.acknowledged(update, worker);
        return;
      }
      case 'certNeed':
        this.answerNeed(worker, msg.id, msg.name);
        return;
      case 'certClaimed':
        try {
          this.requests?.claimed(msg.name);
        } catch (err) {
          this.log.error({ err, name: msg.name }, 'tunnel claim: certificate request failed');
        }
        return;
    }
  }

  private answerNeed(worker: Worker, id: number, name: string): void {
    const reply = (ok: boolean) => send(worker, { nc: 'certNeedAnswer', id, ok });
    const handler = this.requests;
    if (!handler || typeof name !== 'string') return reply(false);
    let asked: Promise<boolean>;
    try {
      asked = handler.need(name);
    } catch (err) {
      this.log.error({ err, name }, 'on-demand certificate request failed');
      return reply(false);
    }
    asked.then(
      (ok) => reply(ok === true),
      (err: unknown) => {
        this.log.error({ err, name }, 'on-demand certificate request failed');
        reply(false);
      },
    );
  }
}

/** Only the fields that make a challenge (what the manager passes may carry more). */
function plainChallenge(c: AcmeChallenge): AcmeChallenge {
  return c.type === 'http-01'
    ? { type: c.type, token: c.token, keyAuthorization: c.keyAuthorization }
    : { type: c.type, name: c.name, key: c.key, cert: c.cert };
}

function challengeKey(c: AcmeChallenge): string {
  return c.type === 'http-01' ? `http-01 ${c.token}` : `tls-alpn-01 ${c.name.toLowerCase()}`;
}

function describe(c: AcmeChallenge): string {
  return c.type === 'http-01' ? `HTTP-01 challenge ${c.token}` : `TLS-ALPN-01 challenge for ${c.name}`;
}

function send(worker: Worker, msg: ToWorker): void {
  if (!worker.isConnected()) return;
  try {
    worker.send(msg);
  } catch {
    /* the worker is going away; its exit counts as its answer */
  }
}
