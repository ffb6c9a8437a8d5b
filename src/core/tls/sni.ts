// The certificates of one TLS listener by name, for SNI: the exact name, then wildcards replacing labels from
// the left (Caddy v1's order), then the listener's default (a catch-all site's certificate). A name that none
// of them covers gets no certificate: the handshake fails cleanly, rather than showing another site's.
import type { SecureContext } from 'node:tls';

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
    const exact = this.byName.get(name);
    if (exact) return exact;
    const labels = name.split('.');
    for (let i = 0; i < labels.length - 1; i++) {
      labels[i] = '*';
      const wild = this.byName.get(labels.join('.'));
      if (wild) return wild;
    }
    return this.fallback;
  }
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is 127.0.0.1. */
function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
