// The certificates of one TLS listener by name, for SNI: the exact name, then wildcards replacing labels from
// the left (Caddy v1's order), then the listener's default (a catch-all site's certificate). A name that none
// of them covers gets no certificate: the handshake fails cleanly, rather than showing another site's.
// Names served by automatic HTTPS are looked up in the process-wide managed certificates at each handshake, so
// a certificate obtained or renewed in the background is served at once.
import type { SecureContext } from 'node:tls';
import type { TlsPolicy } from './config.js';
import { managedCertificates } from './managed.js';

export interface IndexedCert {
  readonly context: SecureContext;
  /** The PEM it was made from (a server's default context is made from options, not a SecureContext). */
  readonly pem: { readonly key: string; readonly cert: string };
  /** When the certificate stops being valid (ms since the epoch), for renewal. */
  readonly notAfter: number;
}

export class CertificateIndex {
  private readonly byName = new Map<string, IndexedCert>();
  private fallback: IndexedCert | undefined;
  /** Names (and `*.` wildcards) whose certificates come from automatic HTTPS. */
  private readonly managed = new Set<string>();
  /** Host patterns of on-demand sites: an exact name, `*.example.com`, or '' for any name. */
  private readonly onDemand: string[] = [];

  /** The listener's policy, which every managed certificate's context is made with. */
  constructor(private readonly policy?: TlsPolicy) {}

  /** Serves these names with their managed certificates (once the manager has them). */
  addManaged(names: readonly string[]): void {
    for (const name of names) this.managed.add(name.toLowerCase());
  }

  /** Names matching the host pattern may get a certificate on demand, at their first handshake. */
  addOnDemand(pattern: string): void {
    this.onDemand.push(pattern.toLowerCase());
  }

  /** Whether a handshake for `name` without a certificate should ask for one on demand. */
  wantsOnDemand(name: string): boolean {
    const lower = name.toLowerCase();
    return this.onDemand.some((p) => matchesHost(p, lower));
  }

  /** Serves `cert` for these names (lower case; `*.example.com` for a wildcard). */
  add(names: readonly string[], cert: IndexedCert): void {
    for (const name of names) if (!this.byName.has(name)) this.byName.set(name, cert);
  }

  /** Serves `cert` for names nothing else covers, and to clients that send no SNI. */
  setDefault(cert: IndexedCert): void {
    this.fallback ??= cert;
  }

  /** Replaces a certificate everywhere it is served (a renewed one): new handshakes get the new one. */
  replace(old: IndexedCert, next: IndexedCert): void {
    for (const [name, cert] of this.byName) if (cert === old) this.byName.set(name, next);
    if (this.fallback === old) this.fallback = next;
  }

  /** Every distinct certificate (for renewal checks). */
  all(): IndexedCert[] {
    const set = new Set(this.byName.values());
    if (this.fallback) set.add(this.fallback);
    return [...set];
  }

  /**
   * The certificate for a handshake: by SNI name, else (no SNI: an IP address was dialled) by the local
   * address the client reached, else the default.
   */
  lookup(servername: string | undefined, localAddress: string | undefined): IndexedCert | undefined {
    const name = servername ? servername.toLowerCase().replace(/\.$/, '') : stripV4Mapped(localAddress ?? '');
    const exact = this.byName.get(name) ?? this.managedFor(name, name);
    if (exact) return exact;
    const labels = name.split('.');
    for (let i = 0; i < labels.length - 1; i++) {
      labels[i] = '*';
      const pattern = labels.join('.');
      const wild = this.byName.get(pattern) ?? this.managedFor(pattern, name);
      if (wild) return wild;
    }
    if (this.onDemand.length > 0 && this.wantsOnDemand(name)) {
      const issued = managedCertificates.find(name);
      if (issued && this.policy) return issued.forPolicy(this.policy);
    }
    return this.fallback;
  }

  private managedFor(pattern: string, name: string): IndexedCert | undefined {
    if (!this.policy || !this.managed.has(pattern)) return undefined;
    return managedCertificates.find(name)?.forPolicy(this.policy);
  }
}

/** An exact name, `*.example.com` (one label or more in front), or '' (any name). */
function matchesHost(pattern: string, name: string): boolean {
  if (pattern === '' || pattern === '*') return true;
  if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
  return pattern === name;
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is 127.0.0.1. */
function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
