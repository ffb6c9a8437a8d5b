// One certificate order at an ACME CA (RFC 8555) through acme-client: the account (made once per CA and email,
// kept in storage), a fresh key and CSR, the challenge answered by every server process before the CA is told
// to validate, and the chain. Scheduling, retries and storage of the result are the manager's.
import { X509Certificate } from 'node:crypto';
import type * as Acme from 'acme-client';
import type { KeyType } from '../../core/tls/config.js';
import type { AcmeChallenge, PemPair } from '../../core/tls/managed.js';
import type { CertificateSink } from '../sink.js';
import { safeKeyPart, type Storage } from '../storage.js';
import { dns01Fqdn, type DnsHook } from './dns-exec.js';
import { lazyRequire } from '../../core/lazy-require.js';

/** acme-client (about 8 MB of heap) is loaded by the first order: most processes never make one. */
const acme = lazyRequire<typeof Acme>('acme-client');

export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

/** Who orders: the CA, the account's email, the client settings of the -ca* flags. */
export interface IssuerSettings {
  readonly ca: string;
  readonly email: string | undefined;
  /** -catimeout: the longest wait for one request to the CA. */
  readonly caTimeoutMs: number;
}

export interface Issued extends PemPair {
  readonly notBefore: number;
  readonly notAfter: number;
}

/** What one order needs besides the issuer: the name, the key type, how to prove control of it. */
export interface OrderRequest {
  readonly subject: string;
  readonly keyType: KeyType;
  /** The challenge to use (the manager alternates between the allowed ones across attempts). */
  readonly challenge: ChallengeType;
  readonly dns: DnsHook | undefined;
}

/** The part of storage keys that names a CA: its host (and port). */
export function caKey(ca: string): string {
  return safeKeyPart(new URL(ca).host);
}

/** acme-client's HTTP client is one per process: bounded requests, few retries (ours are in the manager). */
function configureHttp(timeoutMs: number): void {
  acme().axios.defaults.timeout = timeoutMs;
  // acme-client retries 5xx, 429 and unreachable CAs 5 times, waiting 5 s more each time (75 s in all):
  // one quick retry covers a blip, and the manager's backoff handles a CA that is down.
  const settings = (acme().axios.defaults as { acmeSettings?: Record<string, number> }).acmeSettings;
  if (settings) {
    settings.retryMaxAttempts = 1;
    settings.retryDefaultDelay = 1;
  }
}

export class Issuer {
  private account: Promise<Acme.Client> | undefined;

  constructor(
    private readonly settings: IssuerSettings,
    private readonly storage: Storage,
    private readonly sink: CertificateSink,
  ) {}

  /** Orders a certificate for the request; throws what went wrong (the CA's problem detail when it said one). */
  async obtain(request: OrderRequest): Promise<Issued> {
    configureHttp(this.settings.caTimeoutMs);
    try {
      return await this.order(request, await this.client());
    } catch (err) {
      // The CA no longer knows the stored account (its database was reset, or the account was deactivated):
      // register again with the same key instead of failing every order until someone deletes files
      // (caddy#2451).
      if (!/accountDoesNotExist|account .*(does not exist|not found)/i.test((err as Error).message))
        throw this.described(err);
      await this.storage.delete(`${this.accountPrefix()}/account.json`);
      this.account = undefined;
      return this.order(request, await this.client());
    }
  }

  /**
   * The error to log: acme-client's retry of a request that got no answer at all fails with a TypeError about
   * its internals (`reading 'config'`); say what happened instead.
   */
  private described(err: unknown): Error {
    const e = err as NodeJS.ErrnoException;
    if (e.code && /^E[A-Z]+$/.test(e.code) && !e.message.includes(this.settings.ca))
      return new Error(`the CA at ${this.settings.ca} is unreachable (${e.code})`, { cause: err });
    if (err instanceof TypeError && /Cannot read properties of undefined/.test(err.message))
      return new Error(`no answer from the CA at ${this.settings.ca}`, { cause: err });
    return e;
  }

  private async order(request: OrderRequest, client: Acme.Client): Promise<Issued> {
    const certKey = await newKey(request.keyType);
    const [, csr] = await acme().crypto.createCsr({ altNames: [request.subject] }, certKey);
    const chain = await client.auto({
      csr,
      email: this.settings.email,
      termsOfServiceAgreed: true,
      challengePriority: [request.challenge],
      // The CA checks; a self-check from here would need this host to reach itself by its public name.
      skipChallengeVerification: true,
      challengeCreateFn: (authz, challenge, keyAuthorization) =>
        this.present(request, authz.identifier.value, challenge, keyAuthorization),
      challengeRemoveFn: (authz, challenge, keyAuthorization) =>
        this.cleanup(request, authz.identifier.value, challenge, keyAuthorization),
    });
    await this.saveAccountUrl(client);
    const leaf = new X509Certificate(chain);
    return {
      key: certKey.toString(),
      cert: chain,
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
    };
  }

  private async present(
    request: OrderRequest,
    name: string,
    challenge: { type: string; token: string },
    keyAuthorization: string,
  ): Promise<void> {
    if (challenge.type === 'dns-01') {
      if (!request.dns) throw new Error('dns-01 needs a DNS hook');
      await request.dns.present(dns01Fqdn(name), keyAuthorization);
      return;
    }
    const answer = await this.challengeOf(name, challenge, keyAuthorization);
    try {
      await this.sink.putChallenge(answer);
    } catch (err) {
      // acme-client cleans up only challenges that were put: a worker that never acknowledged must not keep
      // this one (nor get it in a later snapshot).
      await this.sink.dropChallenge(answer).catch(() => undefined);
      throw err;
    }
  }

  private async cleanup(
    request: OrderRequest,
    name: string,
    challenge: { type: string; token: string },
    keyAuthorization: string,
  ): Promise<void> {
    if (challenge.type === 'dns-01') {
      await request.dns?.cleanup(dns01Fqdn(name), keyAuthorization);
      return;
    }
    await this.sink.dropChallenge(await this.challengeOf(name, challenge, keyAuthorization));
  }

  private readonly alpnCerts = new Map<string, AcmeChallenge>();

  private async challengeOf(
    name: string,
    challenge: { type: string; token: string },
    keyAuthorization: string,
  ): Promise<AcmeChallenge> {
    if (challenge.type === 'http-01') return { type: 'http-01', token: challenge.token, keyAuthorization };
    // The same challenge object for present and cleanup (the certificate is made once).
    const id = `${name}\0${keyAuthorization}`;
    let made = this.alpnCerts.get(id);
    if (!made) {
      const authz = { identifier: { type: 'dns', value: name } } as Acme.Authorization;
      const [key, cert] = await acme().crypto.createAlpnCertificate(authz, keyAuthorization);
      made = { type: 'tls-alpn-01', name, key: key.toString(), cert: cert.toString() };
      this.alpnCerts.set(id, made);
    } else this.alpnCerts.delete(id);
    return made;
  }

  /** The account client: key and URL from storage, or a new key (registered at the first order). */
  private client(): Promise<Acme.Client> {
    this.account ??= this.loadAccount().catch((err: unknown) => {
      this.account = undefined;
      throw err;
    });
    return this.account;
  }

  private accountPrefix(): string {
    return `acme/${caKey(this.settings.ca)}/users/${safeKeyPart(this.settings.email ?? 'default')}`;
  }

  private async loadAccount(): Promise<Acme.Client> {
    const prefix = this.accountPrefix();
    const release = await this.storage.lock(
      `account_${caKey(this.settings.ca)}_${this.settings.email ?? ''}`,
    );
    try {
      let accountKey = await this.storage.load(`${prefix}/account.key`);
      if (!accountKey) {
        accountKey = await acme().crypto.createPrivateEcdsaKey('P-256');
        await this.storage.store(`${prefix}/account.key`, accountKey);
      }
      const meta = await this.storage.load(`${prefix}/account.json`);
      const accountUrl = meta ? (JSON.parse(meta.toString()) as { url?: string }).url : undefined;
      return new (acme().Client)({
        directoryUrl: this.settings.ca,
        accountKey,
        ...(accountUrl && { accountUrl }),
        // Polls of a pending validation: from 250 ms, at most 5 s apart, about 30 s in all.
        backoffAttempts: 10,
        backoffMin: 250,
        backoffMax: 5000,
      });
    } finally {
      await release();
    }
  }

  private async saveAccountUrl(client: Acme.Client): Promise<void> {
    const key = `${this.accountPrefix()}/account.json`;
    if (await this.storage.load(key)) return;
    await this.storage.store(
      key,
      JSON.stringify({ url: client.getAccountUrl(), email: this.settings.email ?? null }),
    );
  }
}

function newKey(type: KeyType): Promise<Buffer> {
  switch (type) {
    case 'P256':
      return acme().crypto.createPrivateEcdsaKey('P-256');
    case 'P384':
      return acme().crypto.createPrivateEcdsaKey('P-384');
    case 'RSA2048':
      return acme().crypto.createPrivateRsaKey(2048);
    case 'RSA4096':
      return acme().crypto.createPrivateRsaKey(4096);
  }
}
