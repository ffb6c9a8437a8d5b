// The startup listing: one line per listener, then one URL per site that a browser or curl can use, with
// the port actually bound. A catch-all site is shown at the address its listener is bound to (`localhost`
// for all interfaces), the default port of the scheme is left out, IPv6 hosts are bracketed, and a wildcard
// site shows its pattern (no single URL reaches all of it).
import { isIP } from 'node:net';
import type { Config } from '../app.js';
import { localRootFile } from '../certs/local-ca.js';
import type { SiteAddress } from '../core/site.js';

/** Hosts that catch every request (as core/vhost.ts routes them). */
const CATCH_ALL = new Set(['', '*', '0.0.0.0', '::']);

export function startupLines(config: Config, boundPorts: ReadonlyMap<string, number>): string[] {
  const lines: string[] = [];
  for (const spec of config.listeners.values()) {
    const port = boundPorts.get(spec.key);
    // A redirect listener that could not be bound (port 80 without the right) is left out.
    if (port === undefined) continue;
    const what = spec.tls ? 'HTTPS' : 'HTTP';
    lines.push(`Serving ${what} on ${spec.host ? `${urlHost(spec.host)}:` : 'port '}${port}`);
    for (const site of spec.sites) lines.push(siteUrl(site.config.address, spec.host, port));
    lines.push('');
  }
  if (config.sites.some((s) => s.config.certSource?.kind === 'internal'))
    lines.push(
      `Local CA root certificate (trust it to avoid warnings): ${localRootFile(config.dataDir)}`,
      '',
    );
  if (config.sites.some((s) => s.config.certSource?.kind === 'acme'))
    lines.push(
      `Automatic HTTPS: certificates come from the ACME CA in the background, kept in ${config.dataDir}`,
      '',
    );
  return lines.slice(0, -1);
}

/** `http://localhost:2015`, `http://127.0.0.1:8080/api`, `http://example.com`: usable as they are. */
export function siteUrl(a: SiteAddress, bindHost: string, port: number): string {
  const scheme = a.scheme || 'http';
  const bound = CATCH_ALL.has(bindHost) ? 'localhost' : bindHost;
  const host = CATCH_ALL.has(a.host) ? bound : a.host;
  const defaultPort = (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443);
  const local = isLoopback(bindHost) && !isLoopback(host) ? ' (only accessible on this machine)' : '';
  return `${scheme}://${urlHost(host)}${defaultPort ? '' : `:${port}`}${a.path}${local}`;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
