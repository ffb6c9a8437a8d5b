// What the one-line servers (`file-server`, `reverse-proxy`) share: Go-style flag handling with their own
// usage text, the serving flags they pass on to the normal path, addresses, and Caddyfile quoting.
import cluster from 'node:cluster';
import { isIP } from 'node:net';
import { FlagError, formatUsage, parseFlags, type FlagSpec, type ParsedFlags } from './flags.js';
import { FLAGS } from './options.js';

/** Flags of the main command that also apply here, handed on to the serving path as they were given. */
const SERVE_FLAG_NAMES: readonly string[] = ['workers', 'log', 'log-format', 'grace', 'quiet', 'pidfile'];
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
  const port = m[3] ?? '';
  if (port !== '' && Number(port) > 65535) return undefined;
  return { host: host.toLowerCase(), port };
}

/** The port of an address that names none: 80, as Caddy 2 for plain HTTP. */
export const DEFAULT_PORT = '80';

/**
 * Where Caddy 2 would turn on HTTPS (a host name on a port other than 80, or an `https://` address), nodecaddy
 * serves plain HTTP, as it has no HTTPS yet, and says so. The one place to change once its listeners speak TLS
 * (then: port 443 by default, and the `tls` directive in the generated Caddyfile).
 */
export function noteNoHttps(wouldBeHttps: boolean, url: string): void {
  // Workers run the same command line: only the primary speaks.
  if (wouldBeHttps && !cluster.isWorker)
    process.stderr.write(
      `note: nodecaddy has no HTTPS yet; serving ${url} over plain HTTP where Caddy 2 would use HTTPS\n`,
    );
}

/** A Caddyfile token for any value: quoted, with `"` escaped (the lexer's only escape). */
export function quote(value: string): string {
  return `"${value.replace(/"/g, '\\"')}"`;
}

/** The site address for a host and port: IPv6 in brackets, an empty host is a catch-all. */
export function siteAddress(host: string, port: string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
