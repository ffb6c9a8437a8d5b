// Distributed solving (certmagic's distributedSolver, scale.md §6.3): with a storage that several instances
// share, every HTTP-01 token and TLS-ALPN-01 certificate goes to storage before this instance's server processes
// get it (so before the CA is told to validate) and leaves it after, so whichever instance the CA's validation
// reaches can answer it (core/tls/challenge-lookup.ts).
import type { ChallengeSource } from '../core/tls/challenge-lookup.js';
import type { AcmeChallenge, PemPair } from '../core/tls/managed.js';
import type { Logger } from '../core/logger.js';
import type { CertificateSink } from './sink.js';
import { safeKeyPart, type Storage, type StorageKey } from './storage.js';

/** ACME tokens are base64url (RFC 8555 §8.1); anything else is nobody's token. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

function http01Key(token: string): StorageKey {
  return `acme/challenges/http-01/${token}`;
}

function alpnKey(name: string): StorageKey {
  return `acme/challenges/tls-alpn-01/${safeKeyPart(name)}`;
}

function keyOf(challenge: AcmeChallenge): StorageKey {
  if (challenge.type === 'tls-alpn-01') return alpnKey(challenge.name);
  if (!TOKEN.test(challenge.token)) throw new Error(`the CA sent a token that is not base64url`);
  return http01Key(challenge.token);
}

function valueOf(challenge: AcmeChallenge): string {
  return challenge.type === 'http-01'
    ? challenge.keyAuthorization
    : JSON.stringify({ key: challenge.key, cert: challenge.cert });
}

/** The sink, with every challenge also in the shared storage while it is pending. */
export function storingChallenges(inner: CertificateSink, storage: Storage, log: Logger): CertificateSink {
  return {
    putCertificate: (subject, pem, notAfter) => inner.putCertificate(subject, pem, notAfter),
    async putChallenge(challenge) {
      await storage.store(keyOf(challenge), valueOf(challenge));
      await inner.putChallenge(challenge);
    },
    async dropChallenge(challenge) {
      try {
        await inner.dropChallenge(challenge);
      } finally {
        await storage.delete(keyOf(challenge)).catch((err: unknown) =>
          // Left behind it answers nothing useful (a token is used once), and a later order overwrites it.
          log.warn({ err, key: keyOf(challenge) }, 'removing a challenge from storage failed'),
        );
      }
    },
  };
}

/** Challenges of every instance, read from the shared storage. */
export class StoredChallenges implements ChallengeSource {
  constructor(private readonly storage: Storage) {}

  async http01(token: string): Promise<string | undefined> {
    if (!TOKEN.test(token)) return undefined;
    return (await this.storage.load(http01Key(token)))?.toString();
  }

  async tlsAlpn01(name: string): Promise<PemPair | undefined> {
    const key = alpnKey(name);
    if (key.endsWith('/') || key.endsWith('/.')) return undefined;
    const raw = await this.storage.load(key);
    if (!raw) return undefined;
    const v = JSON.parse(raw.toString()) as Partial<PemPair> | null;
    return typeof v?.key === 'string' && typeof v.cert === 'string'
      ? { key: v.key, cert: v.cert }
      : undefined;
  }
}
