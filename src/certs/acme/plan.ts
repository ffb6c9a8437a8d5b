// What automatic HTTPS must do for a config: the certificates to keep (one per name, or a wildcard by DNS-01)
// and the host patterns whose names get one on demand, with what permission (an `ask` URL, or a tunnel claim).
// Pure: derived from the sites and the ACME flags; the manager acts on it.
import type { Site } from '../../core/site.js';
import type { KeyType } from '../../core/tls/config.js';

/** Let's Encrypt's production directory: Caddy v1's default -ca. */
export const DEFAULT_CA = 'https://acme-v02.api.letsencrypt.org/directory';

/** Caddy v1's ACME flags. */
export interface AcmeFlags {
  /** -agree: the CA's subscriber agreement is accepted. */
  readonly agree: boolean;
  /** -email: the account's email, unless a site's `tls <email>` says another. */
  readonly email: string | undefined;
  /** -ca: the ACME directory URL, unless a site's `tls { ca }` says another. */
  readonly ca: string;
  /** -catimeout. */
  readonly caTimeoutMs: number;
  readonly disableHttpChallenge: boolean;
  readonly disableTlsAlpnChallenge: boolean;
}

export const DEFAULT_ACME_FLAGS: AcmeFlags = {
  agree: false,
  email: undefined,
  ca: DEFAULT_CA,
  caTimeoutMs: 30_000,
  disableHttpChallenge: false,
  disableTlsAlpnChallenge: false,
};

/** Who orders a certificate, and how. */
export interface OrderSettings {
  readonly ca: string;
  readonly email: string | undefined;
  readonly keyType: KeyType;
  /** `tls { dns exec <command…> }`: DNS-01 through this command (the only way to a wildcard). */
  readonly dns: readonly string[] | undefined;
}

/** A certificate kept from start: obtained when missing, renewed before it expires. */
export interface ManagedSubject extends OrderSettings {
  /** The name, or `*.example.com`. */
  readonly subject: string;
  /** The sites it serves, for messages. */
  readonly sites: readonly string[];
}

/** Names matching `pattern` may get a certificate at their first handshake, when the permission allows. */
export interface OnDemandRule extends OrderSettings {
  /** An exact name, `*.example.com`, or '' (any name: a catch-all site). */
  readonly pattern: string;
  /** `ask <url>`: a 2xx for `?domain=<name>` allows it. */
  readonly ask: string | undefined;
  /** A tunnel site: names that authenticated tunnel clients claim are allowed. */
  readonly byClaim: boolean;
  /** `max_certs`: at most this many certificates on demand for the site. */
  readonly maxCerts: number | undefined;
  readonly site: string;
}

export interface AcmePlan {
  readonly subjects: readonly ManagedSubject[];
  readonly onDemand: readonly OnDemandRule[];
}

/** How a site served by automatic HTTPS gets its certificate. */
export type AcmeRole =
  | { readonly kind: 'managed'; readonly subject: string }
  | { readonly kind: 'on-demand'; readonly pattern: string };

/**
 * A site's role, or an error message when it cannot get a certificate (a wildcard without a DNS hook and
 * without a permission for names on demand; `max_certs` without `ask`: Caddy 1 would have issued for any name).
 */
export function acmeRoleOf(site: Site): AcmeRole | { readonly error: string } {
  const { address, tls } = site.config;
  const host = address.host.toLowerCase();
  const acme = tls?.acme;
  const byClaim = site.config.onDemandByClaim === true;
  if (acme?.ask !== undefined || acme?.maxCerts !== undefined) {
    if (acme.ask === undefined && !byClaim)
      return {
        error:
          'on-demand TLS (max_certs) needs `ask <url>` to say which names may have a certificate; ' +
          'without it anyone could make this server order certificates for any name',
      };
    return { kind: 'on-demand', pattern: host === '*' ? '' : host };
  }
  if (host.startsWith('*.')) {
    if (acme?.dns) return { kind: 'managed', subject: host };
    if (byClaim) return { kind: 'on-demand', pattern: host };
    return {
      error:
        `a wildcard certificate for ${host} needs the DNS-01 challenge: add \`tls { dns exec <command> }\`, ` +
        'or `tls { ask <url> }` to get a certificate per name on demand',
    };
  }
  if (acme?.wildcard) {
    if (!acme.dns)
      return { error: `wildcard: a wildcard certificate needs \`dns exec <command>\` (DNS-01) as well` };
    return { kind: 'managed', subject: `*.${host.split('.').slice(1).join('.')}` };
  }
  return { kind: 'managed', subject: host };
}

function orderSettings(site: Site, flags: AcmeFlags): OrderSettings {
  const tls = site.config.tls;
  return {
    ca: tls?.acme.ca ?? flags.ca,
    email: tls?.acme.email ?? flags.email,
    keyType: tls?.keyType ?? 'P256',
    dns: tls?.acme.dns,
  };
}

/** The plan of a config's sites (those whose certificates come from an ACME CA). */
export function acmePlanOf(sites: readonly Site[], flags: AcmeFlags): AcmePlan {
  const subjects = new Map<string, ManagedSubject>();
  const onDemand: OnDemandRule[] = [];
  for (const site of sites) {
    if (site.config.certSource?.kind !== 'acme') continue;
    const role = acmeRoleOf(site);
    if ('error' in role) continue;
    const settings = orderSettings(site, flags);
    if (role.kind === 'managed') {
      const known = subjects.get(role.subject);
      subjects.set(role.subject, {
        ...(known ?? settings),
        subject: role.subject,
        sites: [...(known?.sites ?? []), site.label],
      });
    } else {
      const acme = site.config.tls?.acme;
      onDemand.push({
        ...settings,
        pattern: role.pattern,
        ask: acme?.ask,
        byClaim: site.config.onDemandByClaim === true,
        maxCerts: acme?.maxCerts,
        site: site.label,
      });
    }
  }
  return { subjects: [...subjects.values()], onDemand };
}

/** The on-demand rule for a name: the most specific pattern that matches (exact, then wildcard, then any). */
export function onDemandRuleFor(plan: AcmePlan, name: string): OnDemandRule | undefined {
  const lower = name.toLowerCase();
  const exact = plan.onDemand.find((r) => r.pattern === lower);
  if (exact) return exact;
  const wild = plan.onDemand.find((r) => r.pattern.startsWith('*.') && lower.endsWith(r.pattern.slice(1)));
  return wild ?? plan.onDemand.find((r) => r.pattern === '');
}
