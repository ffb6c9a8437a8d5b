// `nodecaddy tunnel`: expose a local server through a public nodecaddy running the `tunnel` directive.
import { isValidName } from '../tunnel/protocol.js';
import { TunnelClient } from '../tunnel/client.js';
import { durationFlag, FlagError, formatUsage, parseFlags, type FlagSpec } from './flags.js';

export const TUNNEL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'server',
    type: 'string',
    default: '',
    usage: 'The public nodecaddy, e.g. https://tunnel.example.com (user:pass@ if the site has basicauth)',
  },
  {
    name: 'secret',
    type: 'string',
    default: '',
    usage: 'Secret configured in the tunnel directive (default $NODECADDY_TUNNEL_SECRET)',
  },
  { name: 'name', type: 'string', default: '', usage: 'Name to claim: alice serves alice.<server host>' },
  { name: 'to', type: 'string', default: '', usage: 'Local target: port, host:port or http://host:port' },
  {
    name: 'host-header',
    type: 'string',
    default: 'rewrite',
    usage: 'Host sent to the target: rewrite (the target host:port), preserve (the public host), or a value',
  },
  {
    name: 'dial',
    type: 'string',
    default: '',
    usage: 'Connect to this host:port instead of resolving <name>.<server host> (no wildcard DNS yet)',
  },
  { name: 'ping', type: 'string', default: '15s', usage: 'Heartbeat interval; a missed answer reconnects' },
  { name: 'timeout', type: 'string', default: '10s', usage: 'Longest connection handshake' },
  { name: 'max-backoff', type: 'string', default: '30s', usage: 'Longest wait between reconnects' },
  { name: 'quiet', type: 'bool', default: 'false', usage: 'No line per request' },
];

const USAGE = `Usage: nodecaddy tunnel -server URL -name NAME -to TARGET [flags]

Exposes a local server through a public nodecaddy whose site has the tunnel
directive: requests for NAME.<server host> are forwarded to TARGET over one
WebSocket. Prints the public URL, then one line per request. Reconnects by
itself; Ctrl-C closes the tunnel.

  nodecaddy tunnel -server https://tunnel.example.com -secret "$TUNNEL_SECRET" -name alice -to 3000

Flags:
`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}${formatUsage(TUNNEL_FLAGS)}\n`);
  process.exit(2);
}

/** `3000`, `localhost:3000`, `[::1]:3000`, `http://localhost:3000` → host and port. */
export function parseTarget(value: string): { host: string; port: number } | undefined {
  let v = value.replace(/^http:\/\//, '').replace(/\/$/, '');
  if (/^\d+$/.test(v)) v = `localhost:${v}`;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(v);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

/** localhost, *.localhost, 127.0.0.0/8 and ::1: a connection that never leaves this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}

/** Plain http to another machine carries the secret (and every request) readable by anyone on the way. */
function cleartextWarning(server: URL, dial: { host: string } | undefined): string | undefined {
  if (server.protocol !== 'http:' && server.protocol !== 'ws:') return undefined;
  if (isLoopback(dial?.host ?? server.hostname)) return undefined;
  return (
    `warning: -server ${server.protocol}//${server.host} is not encrypted: the tunnel secret and all ` +
    'tunnelled traffic cross the network in clear text; use https://'
  );
}

function duration(flag: string, value: string): number {
  try {
    return durationFlag(flag, value);
  } catch (err) {
    usageError((err as Error).message);
  }
}

export async function tunnelMain(argv: string[]): Promise<void> {
  let flags;
  try {
    flags = parseFlags(TUNNEL_FLAGS, argv);
  } catch (err) {
    if (err instanceof FlagError && err.help) {
      process.stdout.write(`${USAGE}${formatUsage(TUNNEL_FLAGS)}\n`);
      process.exit(0);
    }
    usageError((err as Error).message);
  }
  const flag = (name: string) => flags.values.get(name)!;
  if (flags.positional.length > 0) usageError(`unexpected argument: ${flags.positional[0]}`);
  let server: URL;
  try {
    server = new URL(flag('server'));
    if (!/^(https?|wss?):$/.test(server.protocol)) throw new Error('scheme');
  } catch {
    usageError(`-server must be a URL like https://tunnel.example.com (got "${flag('server')}")`);
  }
  const secret = flag('secret') || process.env.NODECADDY_TUNNEL_SECRET || '';
  if (!secret) usageError('-secret is required (or set NODECADDY_TUNNEL_SECRET)');
  const name = flag('name').toLowerCase();
  if (!isValidName(name)) usageError(`-name must be one DNS label (a-z, 0-9, -), got "${flag('name')}"`);
  const target = parseTarget(flag('to'));
  if (!target) usageError(`-to must be a port, host:port or http://host:port (got "${flag('to')}")`);
  let dial;
  if (flag('dial')) {
    dial = parseTarget(flag('dial'));
    if (!dial) usageError(`-dial must be host:port (got "${flag('dial')}")`);
  }
  const warning = cleartextWarning(server, dial);
  if (warning) process.stderr.write(`${warning}\n`);
  const client = new TunnelClient({
    server,
    secret,
    name,
    target,
    dial,
    hostHeader: flag('host-header'),
    pingIntervalMs: duration('ping', flag('ping')),
    handshakeTimeoutMs: duration('timeout', flag('timeout')) || 10_000,
    maxBackoffMs: Math.max(duration('max-backoff', flag('max-backoff')), 500),
    info: (line) => process.stdout.write(`${line}\n`),
    request: flag('quiet') === 'true' ? undefined : (line) => process.stdout.write(`${line}\n`),
  });
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    process.stdout.write('Closing the tunnel\n');
    void client.stop();
  };
  // One bad request must not take the tunnel down: report it and keep forwarding.
  process.on('uncaughtException', (err) => process.stderr.write(`tunnel: ${err.stack ?? err.message}\n`));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  client.start();
  process.exit(await client.done);
}
