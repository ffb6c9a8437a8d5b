// Automatic HTTPS as one server process sees it: the certificates an ACME CA issued (by subject: a name or a
// wildcard), the ACME challenges to answer (HTTP-01 tokens, TLS-ALPN-01 certificates), and where to ask for a
// certificate the config does not list (on demand at a handshake; a name a tunnel client claimed). The
// certificate manager fills these, in this process or from the cluster primary; listeners read them per
// handshake and per request. Process-wide on purpose: a reload never re-obtains or re-reads anything.
import tls, { type SecureContext } from 'node:tls';
import { contextOptionsOf, type TlsPolicy } from './config.js';
import type { IndexedCert } from './sni.js';

export interface PemPair {
  readonly key: string;
  /** The chain, leaf first. */
  readonly cert: string;
}

/** An issued certificate, with one SecureContext per TLS policy that serves it (made at first use). */
export class ManagedCert {
  private readonly contexts = new WeakMap<TlsPolicy, IndexedCert>();

  constructor(
    readonly subject: string,
    readonly pem: PemPair,
    readonly notAfter: number,
  ) {}

  forPolicy(policy: TlsPolicy): IndexedCert {
    let indexed = this.contexts.get(policy);
    if (!indexed) {
      const context = tls.createSecureContext({ ...contextOptionsOf(policy), ...this.pem });
      indexed = { context, pem: this.pem, notAfter: this.notAfter };
      this.contexts.set(policy, indexed);
    }
    return indexed;
  }
}

export class ManagedCertificates {
  private readonly bySubject = new Map<string, ManagedCert>();

  /** Serves `pem` for `subject` from the next handshake on (a renewal replaces the previous one). */
  put(subject: string, pem: PemPair, notAfter: number): void {
    this.bySubject.set(subject.toLowerCase(), new ManagedCert(subject, pem, notAfter));
  }

  delete(subject: string): void {
    this.bySubject.delete(subject.toLowerCase());
  }

  /** The certificate for a name: its own, else a wildcard one (`*.example.com` for `a.example.com`). */
  find(name: string): ManagedCert | undefined {
    const lower = name.toLowerCase();
    const exact = this.bySubject.get(lower);
    if (exact) return exact;
    const dot = lower.indexOf('.');
    return dot > 0 ? this.bySubject.get(`*${lower.slice(dot)}`) : undefined;
  }

  get(subject: string): ManagedCert | undefined {
    return this.bySubject.get(subject.toLowerCase());
  }

  subjects(): string[] {
    return [...this.bySubject.keys()];
  }

  clear(): void {
    this.bySubject.clear();
  }
}

export const managedCertificates = new ManagedCertificates();

/** An ACME challenge to answer until the CA has validated it. */
export type AcmeChallenge =
  | { readonly type: 'http-01'; readonly token: string; readonly keyAuthorization: string }
  | { readonly type: 'tls-alpn-01'; readonly name: string; readonly key: string; readonly cert: string };

/** HTTP-01: token → key authorization, answered at /.well-known/acme-challenge/<token> on plain HTTP. */
export const http01Tokens = new Map<string, string>();
/** TLS-ALPN-01: name → the context with the challenge certificate, for handshakes that offer acme-tls/1. */
export const alpnChallenges = new Map<string, SecureContext>();

export function putChallenge(challenge: AcmeChallenge): void {
  if (challenge.type === 'http-01') http01Tokens.set(challenge.token, challenge.keyAuthorization);
  else
    alpnChallenges.set(
      challenge.name.toLowerCase(),
      tls.createSecureContext({ key: challenge.key, cert: challenge.cert }),
    );
}

export function dropChallenge(challenge: AcmeChallenge): void {
  if (challenge.type === 'http-01') http01Tokens.delete(challenge.token);
  else alpnChallenges.delete(challenge.name.toLowerCase());
}

export const HTTP01_PREFIX = '/.well-known/acme-challenge/';

/** The key authorization for an HTTP-01 request path, or undefined (not a challenge we hold). */
export function http01Answer(url: string): string | undefined {
  if (http01Tokens.size === 0 || !url.startsWith(HTTP01_PREFIX)) return undefined;
  return http01Tokens.get(url.slice(HTTP01_PREFIX.length));
}

/** Where a server process asks for certificates beyond the config's own list. */
export interface CertificateRequests {
  /**
   * A handshake for `name` (an on-demand site's) found no certificate: resolves true once one is in
   * managedCertificates, false when the name is refused or issuance failed.
   */
  need(name: string): Promise<boolean>;
  /** An authenticated tunnel client holds `name` now: it may have a certificate, and one is obtained at once. */
  claimed(name: string): void;
}

let requests: CertificateRequests | undefined;

/** Installed by the process that serves: the certificate manager itself, or a line to the cluster primary. */
export function setCertificateRequests(r: CertificateRequests | undefined): void {
  requests = r;
}

export function certificateRequests(): CertificateRequests | undefined {
  return requests;
}
