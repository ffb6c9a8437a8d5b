// Which sites are served over HTTPS, with which certificate, and the plain-HTTP sites that redirect to them
// (Caddy v1's rules, tls.md §1.3–1.4, with Caddy 2's redirects for every HTTPS site).
import { isIP } from 'node:net';
import type { Handler } from '../chain.js';
import type { Site, SiteAddress, SiteConfig } from '../site.js';
import type { CertSource } from './config.js';

export interface HttpsPorts {
  /** -http-port: plain HTTP by convention, and where redirects listen. */
  readonly http: string;
  /** -https-port: HTTPS by convention. */
  readonly https: string;
}

/** A host that no public CA will certify: served from the local CA instead (Caddy 2's internal names). */
export function isInternalHost(host: string): boolean {
  if (host === '' || host === '*' || isIP(host) !== 0) return true;
  return (
    host === 'localhost' ||
    /\.(localhost|local|internal|home\.arpa)$/.test(host) ||
    host === 'local' ||
    host === 'internal'
  );
}

/**
 * Whether the site is served over HTTPS, and its certificate's source (undefined: plain HTTP). Warns when a
 * `tls` certificate is given to an address that says plain HTTP (Caddy v1: "TLS disabled for …").
 */
export function siteCertSource(
  config: SiteConfig,
  ports: HttpsPorts,
  warn: (m: string) => void,
): CertSource | undefined {
  const { address, tls } = config;
  if (tls?.off) return undefined;
  const plainByAddress = address.scheme === 'http' || address.port === ports.http;
  if (plainByAddress) {
    if (tls?.source) warn(`TLS disabled: the address says plain HTTP (${tls.where})`);
    return undefined;
  }
  // On demand (`ask`, `max_certs`): the names come at handshakes, so a catch-all host is fine.
  const onDemand = tls?.acme.ask !== undefined || tls?.acme.maxCerts !== undefined;
  if (address.scheme === 'https' || address.port === ports.https)
    return (
      tls?.source ?? (isInternalHost(address.host) && !onDemand ? { kind: 'internal' } : { kind: 'acme' })
    );
  if (tls?.source) return tls.source;
  // A `tls` with only an email or options asks for a managed certificate, when the name can have one.
  if (tls && !isInternalHost(address.host)) return { kind: 'acme' };
  return undefined;
}

/**
 * Caddy v1: a site whose address names a public host and no port (`example.com`) is served over HTTPS on the
 * HTTPS port with a certificate from an ACME CA, unless its `tls` says otherwise (off, or a certificate of its
 * own: those keep the default port).
 */
export function automaticHttpsAddress(config: SiteConfig, ports: HttpsPorts): SiteAddress {
  const { address, tls } = config;
  if (!address.portDefaulted || tls?.off || tls?.source) return address;
  const host = address.host.startsWith('*.') ? address.host.slice(2) : address.host;
  if (isInternalHost(host) || !host.includes('.')) return address;
  return { ...address, scheme: 'https', port: ports.https, portDefaulted: undefined };
}

/** The same address as HTTPS. */
export function httpsAddress(address: SiteAddress): SiteAddress {
  return { ...address, scheme: 'https' };
}

/**
 * Plain-HTTP sites that answer 301 to the HTTPS address, one per HTTPS host, on the HTTP port of the same
 * interface: unless the Caddyfile serves that host on the HTTP port itself, and (as Caddy v1) only when the
 * HTTPS site is on the HTTPS port or the host has no site on the HTTPS port. Catch-all hosts get none.
 */
export function redirectSites(sites: readonly Site[], ports: HttpsPorts): Site[] {
  const served = (host: string, port: string) =>
    sites.some((s) => s.config.address.host === host && s.config.address.port === port);
  const out = new Map<string, Site>();
  for (const site of sites) {
    const a = site.config.address;
    // A catch-all HTTPS site redirects only when its certificates come on demand: then the HTTP port must
    // answer ACME's HTTP-01 for any name (the listener does that before any site).
    if (a.scheme !== 'https' || (isCatchAll(a.host) && site.config.certSource?.kind !== 'acme')) continue;
    if (served(a.host, ports.http)) continue;
    if (a.port !== ports.https && served(a.host, ports.https)) continue;
    const key = `${site.config.bindHost ?? ''}|${a.host}`;
    if (!out.has(key)) out.set(key, redirectSite(site, ports));
  }
  return [...out.values()];
}

function isCatchAll(host: string): boolean {
  return host === '' || host === '*' || host === '0.0.0.0' || host === '::';
}

function redirectSite(target: Site, ports: HttpsPorts): Site {
  const a = target.config.address;
  const address: SiteAddress = {
    original: `http://${a.host}:${ports.http}`,
    scheme: 'http',
    host: a.host,
    port: ports.http,
    path: '',
  };
  const config: SiteConfig = {
    address,
    root: target.config.root,
    indexFiles: [],
    bindHost: target.config.bindHost,
    hiddenFiles: target.config.hiddenFiles,
    sourceFile: target.config.sourceFile,
  };
  // The port is left out when the HTTPS site is on the HTTPS port (port forwarding is assumed, as v1 does).
  const port = a.port === ports.https ? '' : `:${a.port}`;
  const handler: Handler = async (ctx) => {
    const host = hostWithoutPort(ctx.req.headers.host ?? a.host);
    const res = ctx.res;
    res.statusCode = 301;
    res.setHeader('Location', `https://${host}${port}${ctx.originalUri}`);
    res.setHeader('Connection', 'close');
    res.setHeader('Content-Length', 0);
    res.end();
  };
  const label = `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${ports.http}`;
  return { config, handler, label, implicit: true };
}

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}
