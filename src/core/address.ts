// Site addresses `[scheme://][host][:port][/path]`, as Caddy v1's standardizeAddress reads them.
import { isIP } from 'node:net';
import type { SiteAddress } from './site.js';

export interface AddressDefaults {
  /** -host: filled into addresses without a host. */
  host: string;
  /** -port: filled into addresses without a port (and without a scheme that implies one). */
  port: string;
  /** Paths compare case-sensitively only when CASE_SENSITIVE_PATH says so (Caddy 0.11+ default: insensitive). */
  caseSensitivePath: boolean;
  /** -http-port and -https-port: the ports `http://` and `https://` mean, and that mean them (80, 443). */
  httpPort?: string;
  httpsPort?: string;
}

/** Parses one address as written; throws an Error whose message starts with `[input]`. */
export function parseAddress(input: string, defaults: AddressDefaults): SiteAddress {
  let rest = input;
  let scheme = '';
  const sep = rest.indexOf('://');
  if (sep >= 0) {
    scheme = rest.slice(0, sep).toLowerCase();
    rest = rest.slice(sep + 3);
    if (scheme !== 'http' && scheme !== 'https') throw new Error(`[${input}] unsupported scheme '${scheme}'`);
  } else if (rest.startsWith('//')) rest = rest.slice(2);

  const schemePorts: Record<string, string> = {
    http: defaults.httpPort ?? '80',
    https: defaults.httpsPort ?? '443',
  };
  let path = '';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    path = rest.slice(slash);
    rest = rest.slice(0, slash);
  }

  let host = rest;
  let port = '';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new Error(`[${input}] missing ']' in IPv6 address`);
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after.startsWith(':')) port = after.slice(1);
    else if (after) throw new Error(`[${input}] unexpected '${after}' after IPv6 address`);
  } else {
    const colons = rest.split(':').length - 1;
    if (colons === 1) {
      const i = rest.indexOf(':');
      host = rest.slice(0, i);
      port = rest.slice(i + 1);
    } else if (colons > 1 && isIP(rest) !== 6) {
      throw new Error(`[${input}] too many colons in address`);
    }
  }

  if (scheme && (port === 'http' || port === 'https'))
    throw new Error(`[${input}] scheme specified twice in address`);
  if (port === 'http' || port === 'https') {
    scheme = port;
    port = schemePorts[port];
  }
  if (!port && scheme) port = schemePorts[scheme];
  if (
    (scheme === 'http' && port === schemePorts.https) ||
    (scheme === 'https' && port === schemePorts.http)
  ) {
    throw new Error(`[${input}] scheme and port violate convention`);
  }

  host = host.toLowerCase();
  if (!host && defaults.host) host = defaults.host.toLowerCase();
  const portDefaulted = !port && !scheme;
  if (!port) port = defaults.port;
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`[${input}] invalid port '${port}'`);
  port = String(Number(port));
  if (!scheme) scheme = port === schemePorts.https ? 'https' : port === schemePorts.http ? 'http' : '';
  if (path === '/') path = '';
  if (path && !defaults.caseSensitivePath) path = path.toLowerCase();
  if (!/^[\p{L}\p{N}.*_-]*$/u.test(host) && isIP(host) !== 6)
    throw new Error(`[${input}] invalid host '${host}'`);
  return {
    original: input,
    scheme,
    host: normalizeIp(host),
    port,
    path,
    ...(portDefaulted && { portDefaulted: true }),
  };
}

/** Canonical text of an IP host (`0:0::1` → `::1`) so that equal addresses compare equal. */
function normalizeIp(host: string): string {
  if (isIP(host) === 6) {
    try {
      return new URL(`http://[${host}]/`).hostname.slice(1, -1);
    } catch {
      return host;
    }
  }
  return host;
}

/** `http://host:port/path`, as the startup listing prints it. */
export function addressLabel(a: SiteAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${a.scheme || 'http'}://${host}:${a.port}${a.path}`;
}

/** Host and port a listener binds: `bind` wins; else all interfaces. */
export function listenKey(bindHost: string | undefined, port: string): string {
  const host = bindHost ?? '';
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
