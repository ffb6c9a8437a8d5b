// The certificates a config's TLS listeners serve, made ready before the config takes traffic: read from files
// (`tls <cert> <key>`, `load`), made in memory (`self_signed`), or signed by the local CA (`internal`). Made
// certificates are kept per process and reused by later reloads while they have more than a third of their
// life left, and renewed in place (new handshakes get the new one) by CertificateRenewal.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { contextOptionsOf, type KeyType, type TlsPolicy } from '../core/tls/config.js';
import { CertificateIndex, type IndexedCert } from '../core/tls/sni.js';
import type { Site } from '../core/site.js';
import { acmeRoleOf } from './acme/plan.js';
import { localCa } from './local-ca.js';
import { selfSignedLeaf, signedLeaf, type PemPair } from './x509.js';

/** Made leaves live a week (Caddy v1's self-signed lifetime; Caddy 2's internal leaves live 12 h). */
export const MADE_LEAF_MS = 7 * 24 * 3600 * 1000;

/** What a listener needs of its config. */
export interface TlsListenerSpec {
  readonly key: string;
  readonly tls: TlsPolicy | undefined;
  readonly sites: readonly Site[];
}

/** A certificate this process made, and how to make it again. */
interface Made {
  readonly pem: PemPair;
  readonly notAfter: number;
  readonly make: () => Promise<PemPair>;
}

const made = new Map<string, Made>();

function notAfterOf(pem: string): number {
  return Date.parse(new X509Certificate(pem).validTo);
}

function isCatchAllHost(host: string): boolean {
  return host === '' || host === '*' || host === '0.0.0.0' || host === '::';
}

/** The names a made certificate is for: the site's host, or the local names for a catch-all site. */
function madeNames(host: string): string[] {
  return isCatchAllHost(host) ? ['localhost', '127.0.0.1', '::1'] : [host];
}

async function makeOnce(key: string, make: () => Promise<PemPair>): Promise<Made> {
  const kept = made.get(key);
  const now = Date.now();
  if (kept && kept.notAfter - now > MADE_LEAF_MS / 3) return kept;
  const pem = await make();
  const fresh = { pem, notAfter: notAfterOf(pem.cert), make };
  made.set(key, fresh);
  return fresh;
}

function indexed(
  pem: PemPair,
  policy: TlsPolicy,
  notAfter: number,
  renew?: () => Promise<PemPair>,
): RenewableCert {
  return {
    context: tls.createSecureContext({ ...contextOptionsOf(policy), key: pem.key, cert: pem.cert }),
    pem,
    notAfter,
    renew:
      renew &&
      (async () => {
        const fresh = await renew();
        return indexed(fresh, policy, notAfterOf(fresh.cert), renew);
      }),
  };
}

export interface RenewableCert extends IndexedCert {
  /** Makes a replacement (made certificates only; files are re-read by a reload when they change). */
  readonly renew: (() => Promise<RenewableCert>) | undefined;
}

/** A site's certificates, each with the names it carries besides the site's own. */
async function siteCertificates(
  site: Site,
  policy: TlsPolicy,
  dataDir: string,
): Promise<{ cert: RenewableCert; names: readonly string[] }[]> {
  const { certSource, address } = site.config;
  const keyType: KeyType = site.config.tls?.keyType ?? 'P256';
  if (!certSource) return [];
  switch (certSource.kind) {
    case 'files':
      // A certificate from files also serves the names it carries (`load` folders hold many names).
      return certSource.pairs.map((p) => ({
        cert: indexed({ cert: p.cert, key: p.key }, policy, notAfterOf(p.cert)),
        names: p.names,
      }));
    case 'self_signed':
    case 'internal': {
      const names = madeNames(address.host);
      const make =
        certSource.kind === 'self_signed'
          ? () => selfSignedLeaf(names, keyType, MADE_LEAF_MS)
          : async () => signedLeaf(await localCa(dataDir), names, keyType, MADE_LEAF_MS);
      const m = await makeOnce(`${certSource.kind}|${keyType}|${dataDir}|${names.join(',')}`, make);
      return [{ cert: indexed(m.pem, policy, m.notAfter, make), names: [] }];
    }
    case 'acme':
      // Served from the managed certificates (core/tls/managed.ts) by name: see buildCertificates.
      return [];
  }
}

/** The SNI index of every TLS listener of a config, keyed by listener. */
export async function buildCertificates(
  listeners: Iterable<TlsListenerSpec>,
  dataDir: string,
): Promise<Map<string, CertificateIndex>> {
  const out = new Map<string, CertificateIndex>();
  for (const spec of listeners) {
    if (!spec.tls) continue;
    const index = new CertificateIndex(spec.tls);
    for (const site of spec.sites) {
      const host = site.config.address.host;
      if (site.config.certSource?.kind === 'acme') {
        const role = acmeRoleOf(site);
        if ('error' in role) throw new Error(`${site.label}: ${role.error}`);
        if (role.kind === 'managed') index.addManaged([host]);
        else index.addOnDemand(role.pattern);
        continue;
      }
      const catchAll = isCatchAllHost(host);
      for (const { cert, names } of await siteCertificates(site, spec.tls, dataDir)) {
        if (catchAll) index.setDefault(cert);
        else index.add([host], cert);
        index.add(names, cert);
        // Clients that dial an IP send no SNI: an IP site's certificate is the listener's default then.
        if (isIP(host) !== 0) index.setDefault(cert);
      }
    }
    out.set(spec.key, index);
  }
  return out;
}

/** How often made certificates are checked for renewal. */
export const RENEW_CHECK_MS = 60 * 60 * 1000;

/**
 * Replaces every made certificate (self_signed, internal) of these indexes that has less than a third of its
 * life left; new handshakes get the new one at once. Certificates from files are renewed by whoever writes the
 * files (a change reloads the config). Returns how many were renewed.
 */
export async function renewMadeCertificates(
  indexes: Iterable<CertificateIndex>,
  now = Date.now(),
): Promise<number> {
  let renewed = 0;
  for (const index of indexes) {
    for (const cert of index.all() as RenewableCert[]) {
      if (!cert.renew || cert.notAfter - now > MADE_LEAF_MS / 3) continue;
      index.replace(cert, await cert.renew());
      renewed++;
    }
  }
  return renewed;
}
