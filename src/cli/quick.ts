// What the one-line servers (`file-server`, `reverse-proxy`) share: Go-style flag handling with their own
// usage text, the serving flags they pass on to the normal path, addresses, and Caddyfile quoting.
import { isIP } from 'node:net';
import { FlagError, formatUsage, parseFlags, type FlagSpec, type ParsedFlags } from './flags.js';
import { FLAGS } from './options.js';

/** Flags of the main command that also apply here, handed on to the serving path as they were given. */
const SERVE_FLAG_NAMES: readonly string[] = [
  'workers',
  'log',
  'log-format',
  'grace',
  'quiet',
  'pidfile',
  // HTTPS: the ports that mean plain HTTP and HTTPS, where certificates live, and automatic HTTPS (ACME).
  'http-port',
  'https-port',
  'data',
  'agree',
  'email',
  'ca',
  'catimeout',
  'disable-http-challenge',
  'disable-tls-alpn-challenge',
];
export const SERVE_FLAGS: readonly FlagSpec[] = FLAGS.filter((f) => SERVE_FLAG_NAMES.includes(f.name));

export interface Command {
  readonly usage: string;
  readonly flags: readonly FlagSpec[];
}

export function usageError(command: Command, message: string): never {
  process.stderr.write(`${message}\n${command.usage}${formatUsage(command.flags)}\n`);
  process.exit(2);
}

/** Parses the command's flags; `-h` prints its usage and exits 0; a mistake is a usage error (exit 2). */
export function parseCommand(command: Command, argv: readonly string[]): ParsedFlags {
  let flags: ParsedFlags;
  try {
    flags = parseFlags(command.flags, argv);
  } catch (err) {
    if (err instanceof FlagError && err.help) {
      process.stdout.write(`${command.usage}${formatUsage(command.flags)}\n`);
      process.exit(0);
    }
    usageError(command, (err as Error).message);
  }
  if (flags.positional.length > 0) usageError(command, `unexpected argument: ${flags.positional[0]}`);
  return flags;
}

/** The serving flags the user set, for the main command's parser. */
export function serveArgv(flags: ParsedFlags): string[] {
  return SERVE_FLAG_NAMES.filter((n) => flags.set.has(n)).map((n) => `-${n}=${flags.values.get(n)}`);
}

/** Every value of a repeatable flag; with `commas`, a comma separates values too (`-to a,b`), as in Caddy 2. */
export function listFlag(flags: ParsedFlags, name: string, commas = false): string[] {
  const given = flags.all.get(name) ?? [];
  return (commas ? given.flatMap((v) => v.split(',')) : given).map((v) => v.trim()).filter(Boolean);
}

/** `host:port`, `:port`, `[v6]:port` or a bare `host` (port ''), as Go's SplitHostPort but lenient on the port. */
export function splitHostPort(addr: string): { host: string; port: string } | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d{1,5}))?$/.exec(addr);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  const port = m[3] === undefined ? '' : String(Number(m[3]));
  if (Number(port) > 65535) return undefined;
  return { host: host.toLowerCase(), port };
}

/** The ports that mean plain HTTP and HTTPS (-http-port, -https-port; the serving path checks their values). */
export interface SchemePorts {
  readonly http: string;
  readonly https: string;
}

export function schemePorts(flags: ParsedFlags): SchemePorts {
  const port = (name: string) => {
    const v = flags.values.get(name)!;
    return /^\d{1,5}$/.test(v) ? String(Number(v)) : v;
  };
  return { http: port('http-port'), https: port('https-port') };
}

/** Where a one-line server receives traffic, decided as Caddy 2 decides it. */
export interface QuickAddress {
  readonly https: boolean;
  /** Empty: any host. */
  readonly host: string;
  readonly port: string;
}

/**
 * The generated Caddyfile's site address, with the scheme and port spelled out so that the core's rules give
 * Caddy 2's result: `https://` is HTTPS with a certificate from the local CA for localhost, IPs and internal
 * names and from the ACME CA for the rest (core/tls/plan.ts); `http://` stays plain. A catch-all plain
 * address is written `:port` (on the HTTPS port that is HTTPS from the local CA, as a Caddyfile `:443`).
 */
export function quickSiteAddress(a: QuickAddress, ports: SchemePorts): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  if (a.https) return a.port === ports.https ? `https://${host}` : `https://${host}:${a.port}`;
  return host ? `http://${host}:${a.port}` : `:${a.port}`;
}

/** A Caddyfile token for any value: quoted, with `"` escaped (the lexer's only escape). */
export function quote(value: string): string {
  return `"${value.replace(/"/g, '\\"')}"`;
}
