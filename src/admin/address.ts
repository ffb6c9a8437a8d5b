// The admin endpoint's address (-admin) and which Host and Origin values it accepts. Caddy 2's rules: on a
// loopback address only `localhost`, `127.0.0.1` and `[::1]` with the port, or the address itself, may name
// it in Host, so that a web page whose name was re-pointed at 127.0.0.1 (DNS rebinding) is refused; on a
// wildcard address (0.0.0.0) the Host is not checked. A browser's Origin must be one of those too.
import { isIP } from 'node:net';

export const DEFAULT_ADMIN = 'localhost:2019';

export interface AdminAddress {
  /** What to bind (`127.0.0.1` for `localhost` or no host). */
  readonly host: string;
  readonly port: number;
  /** As the user would type it back (`localhost:2019`). */
  readonly display: string;
}

/** `-admin` value → address, or undefined for `off`. Throws a usage message for anything else. */
export function parseAdminAddress(value: string): AdminAddress | undefined {
  if (value === 'off') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(`invalid value "${value}" for flag -admin: expected host:port, :port or off`);
  }
  const given = (m[1] ?? m[2]).toLowerCase();
  if (m[1] !== undefined && isIP(given) !== 6) {
    throw new Error(`invalid value "${value}" for flag -admin: [${given}] is not an IPv6 address`);
  }
  // No host means loopback: the endpoint is never public unless the user names a public address.
  const host = given === '' || given === 'localhost' ? '127.0.0.1' : given;
  return { host, port, display: `${given === '' ? 'localhost' : bracket(given)}:${port}` };
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** The Host values (lower case, with port) that may reach the endpoint bound at host:port. */
export function allowedHosts(address: AdminAddress, port: number): Set<string> {
  const hosts = new Set([`${bracket(address.host)}:${port}`]);
  const given = address.display.slice(0, address.display.lastIndexOf(':'));
  hosts.add(`${given}:${port}`);
  if (isLoopback(address.host)) {
    for (const h of ['localhost', '127.0.0.1', '[::1]']) hosts.add(`${h}:${port}`);
  }
  return hosts;
}

/** The host:port of an Origin header value (`http://localhost:2019`), lower case; undefined if unreadable. */
export function originHost(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`.toLowerCase();
  } catch {
    return undefined;
  }
}
