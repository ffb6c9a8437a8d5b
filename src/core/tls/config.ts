// What a site asks of TLS (the `tls` directive's result), and the policy one TLS listener applies: the shapes
// the core passes between setup, app.ts (which sites are HTTPS, which listeners are TLS) and the listeners.
import { constants as cryptoConstants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';

/** Where a site's certificate comes from. */
export type CertSource =
  /** `tls <cert> <key>` and `load <dir>`: PEM chains and keys read from files (at load, to check them). */
  | { kind: 'files'; pairs: readonly CertPair[] }
  /** `tls self_signed`: made in memory for the site's name (Caddy v1: 7 days; we make a new one before that). */
  | { kind: 'self_signed' }
  /** `tls internal` (Caddy 2): signed by nodecaddy's local root CA, kept in the data folder. */
  | { kind: 'internal' }
  /** A certificate from an ACME CA (automatic HTTPS). */
  | { kind: 'acme' };

export interface CertPair {
  /** Where the PEM came from, for messages and to hide it from the file server. */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM chain (leaf first) and key. */
  readonly cert: string;
  readonly key: string;
  /** DNS names and IPs the leaf is valid for (its SANs, else its CN). */
  readonly names: readonly string[];
}

export type KeyType = 'P256' | 'P384' | 'RSA2048' | 'RSA4096';
export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** Caddy v1's client-certificate modes (Go's tls.ClientAuthType). */
export type ClientAuthMode = 'request' | 'require' | 'verify_if_given' | 'require_and_verify';

export interface ClientAuth {
  readonly mode: ClientAuthMode;
  /** PEM CA certificates that client certificates must chain to (the verifying modes). */
  readonly ca: readonly string[];
}

/** What must be the same for every site on one TLS listener (Caddy v1's assertConfigsCompatible). */
export interface TlsPolicy {
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  /** OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites are not configurable, as in Go). */
  readonly ciphers: string;
  /** OpenSSL group list (`X25519:P-256`). */
  readonly curves: string;
  /** Application protocols offered by ALPN, in order of preference. */
  readonly alpn: readonly string[];
  readonly clientAuth: ClientAuth | undefined;
}

/** Settings that only matter once automatic HTTPS obtains certificates (stored, checked, reported). */
export interface AcmeSettings {
  readonly email: string | undefined;
  readonly ca: string | undefined;
  readonly mustStaple: boolean;
  readonly maxCerts: number | undefined;
  readonly ask: string | undefined;
  readonly dns: readonly string[] | undefined;
  readonly wildcard: boolean;
}

/** A site's `tls` directive, parsed. */
export interface SiteTls {
  /** `tls off`: no TLS and no automatic HTTPS for the site. */
  readonly off: boolean;
  /** Undefined when the directive named no source (then the address decides: automatic HTTPS or internal). */
  readonly source: CertSource | undefined;
  readonly keyType: KeyType;
  /** The policy this site asks for; sites sharing a listener must agree (app.ts checks). */
  readonly policy: TlsPolicy;
  /** Which policy fields the site set itself (for the message when two sites disagree). */
  readonly explicit: readonly (keyof TlsPolicy)[];
  readonly acme: AcmeSettings;
  /** Caddyfile position of the directive, for messages. */
  readonly where: string;
}

/**
 * Mozilla's "intermediate" profile (server side TLS 5.7): TLS 1.2 and 1.3; for 1.2 only ECDHE with AEAD
 * ciphers. The DHE suites of the profile are left out: they need DH parameters we do not ship.
 */
export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const DEFAULT_CURVES = 'X25519:P-256:P-384';

export const DEFAULT_POLICY: TlsPolicy = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: DEFAULT_CIPHERS,
  curves: DEFAULT_CURVES,
  alpn: ['h2', 'http/1.1'],
  clientAuth: undefined,
};

/** The fields two policies differ in (empty when they agree). */
export function policyDifferences(a: TlsPolicy, b: TlsPolicy): (keyof TlsPolicy)[] {
  const out: (keyof TlsPolicy)[] = [];
  if (a.minVersion !== b.minVersion || a.maxVersion !== b.maxVersion) out.push('minVersion');
  if (a.ciphers !== b.ciphers) out.push('ciphers');
  if (a.curves !== b.curves) out.push('curves');
  if (a.alpn.join() !== b.alpn.join()) out.push('alpn');
  const ca = a.clientAuth;
  const cb = b.clientAuth;
  if (ca?.mode !== cb?.mode || (ca?.ca ?? []).join() !== (cb?.ca ?? []).join()) out.push('clientAuth');
  return out;
}

/** The SecureContext options a listener's policy fixes (every certificate's context carries them). */
export function contextOptionsOf(policy: TlsPolicy): SecureContextOptions {
  return {
    minVersion: policy.minVersion,
    maxVersion: policy.maxVersion,
    ciphers: policy.ciphers,
    ecdhCurve: policy.curves,
    // No renegotiation at all, as in Go's TLS server: a client-initiated one costs the server a full
    // handshake each (testssl.sh rates it HIGH, a DoS threat), and nothing we serve needs one.
    secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
    // Client certificates are verified against the CAs of the context SNI picked.
    ca: policy.clientAuth?.ca.length ? [...policy.clientAuth.ca] : undefined,
  };
}
