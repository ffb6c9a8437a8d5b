// Distributed ACME solving in a cluster of worker processes: a worker that gets a validation for a challenge
// it does not hold asks its primary, which looks in the shared storage (core/tls/challenge-lookup.ts bounds
// how often and how long). The primary's side listens to every worker through cluster's 'message' event.
import cluster, { type Worker } from 'node:cluster';
import { LOOKUP_TIMEOUT_MS, type ChallengeSource } from '../core/tls/challenge-lookup.js';
import type { PemPair } from '../core/tls/managed.js';
import { isOurs, type ToPrimary, type ToWorker } from './messages.js';
import { sendToPrimary } from './worker-certs.js';

/** The primary answers its workers' lookups from `source`; returns the function that stops it. */
export function answerChallengeLookups(source: ChallengeSource): () => void {
  const onMessage = (worker: Worker, msg: unknown) => {
    if (!isOurs<ToPrimary>(msg) || msg.nc !== 'challengeFind') return;
    const reply = (answer: string | PemPair | undefined) => {
      const out: ToWorker = { nc: 'challengeFound', id: msg.id, answer: answer ?? null };
      if (worker.isConnected()) worker.send(out, undefined, () => undefined);
    };
    let found: Promise<string | PemPair | undefined>;
    try {
      found = msg.kind === 'http-01' ? source.http01(msg.key) : source.tlsAlpn01(msg.key);
    } catch {
      return reply(undefined);
    }
    found.then(reply, () => reply(undefined));
  };
  cluster.on('message', onMessage);
  return () => cluster.off('message', onMessage);
}

/** A worker's ChallengeSource: its primary. */
export class ChallengesFromPrimary implements ChallengeSource {
  private ids = 0;
  private readonly waiting = new Map<number, (answer: string | PemPair | null) => void>();

  constructor() {
    process.on('message', (msg: unknown) => {
      if (isOurs<ToWorker>(msg) && msg.nc === 'challengeFound') this.settle(msg.id, msg.answer);
    });
  }

  async http01(token: string): Promise<string | undefined> {
    const answer = await this.ask('http-01', token);
    return typeof answer === 'string' ? answer : undefined;
  }

  async tlsAlpn01(name: string): Promise<PemPair | undefined> {
    const answer = await this.ask('tls-alpn-01', name);
    return answer !== null && typeof answer === 'object' ? answer : undefined;
  }

  private ask(kind: 'http-01' | 'tls-alpn-01', key: string): Promise<string | PemPair | null> {
    const id = ++this.ids;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, null), LOOKUP_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      if (!sendToPrimary({ nc: 'challengeFind', id, kind, key })) this.settle(id, null);
    });
  }

  private settle(id: number, answer: string | PemPair | null): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(answer);
  }
}
