// `nodecaddy tunnel`: expose a local server (HTTP or any TCP service) through a public nodecaddy running the
// `tunnel` directive, with an inspector and ngrok's agent API on 127.0.0.1:4040.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { TunnelClient } from '../tunnel/client.js';
import { withMemorySettings } from './memory-relaunch.js';
import { batched, jsonOutput, plainOutput, type Output } from '../tunnel/console/lines.js';
import { screenOutput } from '../tunnel/console/screen.js';
import { CaptureStore } from '../tunnel/inspector/capture.js';
import { isLoopbackAddress, startInspector, type Inspector } from '../tunnel/inspector/server.js';
import { isValidName } from '../tunnel/protocol.js';
import { durationFlag, FlagError, formatUsage, parseFlags } from './flags.js';
import {
  cleartextWarning,
  parseListenAddress,
  parseTarget,
  TUNNEL_FLAGS,
  type Target,
} from './tunnel-flags.js';
import { VERSION } from '../version.js';

export { TUNNEL_FLAGS, parseTarget } from './tunnel-flags.js';

const USAGE = `Usage: nodecaddy tunnel -server URL -name NAME -to TARGET [flags]
       nodecaddy tunnel -server URL -tcp PORT [flags]

Exposes a local server through a public nodecaddy whose site has the tunnel
directive: requests for NAME.<server host> are forwarded to TARGET over one
WebSocket. With -tcp (or -to tcp://host:port), any TCP service is exposed on
a public port of the server instead. An inspector with every request, replay
and ngrok's agent API runs on http://127.0.0.1:4040. Reconnects by itself;
Ctrl-C closes the tunnel.

  nodecaddy tunnel -server https://tunnel.example.com -secret "$TUNNEL_SECRET" -name alice -to 3000
  nodecaddy tunnel -server https://tunnel.example.com -secret "$TUNNEL_SECRET" -tcp 22

Flags:
`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}${formatUsage(TUNNEL_FLAGS)}\n`);
  process.exit(2);
}

function duration(flag: string, value: string): number {
  try {
    return durationFlag(flag, value);
  } catch (err) {
    usageError((err as Error).message);
  }
}

/** The flags, checked: everything the client needs, or a usage error. */
function readFlags(argv: string[]) {
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
  // The tunnel is reached as <name>.<server host>: an address has no names below it (use -dial to connect by one).
  if (isIP(server.hostname.replace(/^\[|\]$/g, '')) !== 0) {
    usageError(
      `-server must name the server by its domain, e.g. https://tunnel.example.com (got the address ` +
        `"${server.hostname}"), and -dial ${server.hostname}:${server.port || (/^(https|wss):$/.test(server.protocol) ? 443 : 80)} to connect to that address`,
    );
  }
  const secret = flag('secret') || process.env.NODECADDY_TUNNEL_SECRET || '';
  if (!secret) usageError('-secret is required (or set NODECADDY_TUNNEL_SECRET)');
  let target: Target | undefined;
  if (flag('tcp')) {
    if (flag('to')) usageError('give either -to or -tcp, not both');
    target = parseTarget(flag('tcp'), 'tcp');
    if (!target || target.proto !== 'tcp')
      usageError(`-tcp must be a port or host:port (got "${flag('tcp')}")`);
  } else {
    target = parseTarget(flag('to'));
    if (!target) {
      usageError(`-to must be a port, host:port, http://host:port or tcp://host:port (got "${flag('to')}")`);
    }
  }
  const tcp = target.proto === 'tcp';
  // A TCP tunnel needs a name only to open its session; one of its own is drawn when none is given.
  const name = (flag('name') || (tcp ? `tcp-${randomBytes(4).toString('hex')}` : '')).toLowerCase();
  if (!isValidName(name)) usageError(`-name must be one DNS label (a-z, 0-9, -), got "${flag('name')}"`);
  let remotePort: number | undefined;
  if (flag('remote-port')) {
    remotePort = Number(flag('remote-port'));
    if (!tcp) usageError('-remote-port is for TCP tunnels (-tcp or -to tcp://…)');
    if (!Number.isInteger(remotePort) || remotePort < 1 || remotePort > 65535) {
      usageError(`-remote-port must be a port number (got "${flag('remote-port')}")`);
    }
  }
  const basicAuth = flag('basic-auth') || undefined;
  if (basicAuth !== undefined) {
    if (tcp) usageError('-basic-auth is for HTTP tunnels: a TCP service has no HTTP to ask with');
    const colon = basicAuth.indexOf(':');
    if (colon < 1 || colon === basicAuth.length - 1) usageError('-basic-auth must be user:password');
  }
  let dial;
  if (flag('dial')) {
    dial = parseTarget(flag('dial'));
    if (!dial) usageError(`-dial must be host:port (got "${flag('dial')}")`);
  }
  const keep = Number(flag('inspect-keep'));
  if (!Number.isInteger(keep) || keep < 1)
    usageError(`-inspect-keep must be a positive number (got "${flag('inspect-keep')}")`);
  let inspect: { host: string; port: number; lastPort?: number } | undefined;
  if (flag('inspect') === '') inspect = { host: '127.0.0.1', port: 4040, lastPort: 4050 };
  else if (flag('inspect') !== 'off') {
    inspect = parseListenAddress(flag('inspect'));
    if (!inspect) usageError(`-inspect must be host:port, a port, or off (got "${flag('inspect')}")`);
  }
  const format = flag('log-format');
  if (format !== 'text' && format !== 'json')
    usageError(`-log-format must be text or json (got "${format}")`);
  return {
    server,
    secret,
    name,
    target,
    dial,
    remotePort,
    basicAuth,
    inspect,
    keep,
    format,
    quiet: flag('quiet') === 'true',
    hostHeader: flag('host-header'),
    pingIntervalMs: duration('ping', flag('ping')),
    handshakeTimeoutMs: duration('timeout', flag('timeout')) || 10_000,
    maxBackoffMs: Math.max(duration('max-backoff', flag('max-backoff')), 500),
  };
}

export async function tunnelMain(argv: string[]): Promise<void> {
  withMemorySettings();
  const f = readFlags(argv);
  const lines = batched((text) => process.stdout.write(text));
  process.on('exit', lines.flush);
  const write = lines.write;
  // What the status screen shows, filled in as the client and the inspector come up.
  const shown: { client?: TunnelClient; inspector?: Inspector } = {};
  let output: Output;
  if (f.format === 'json') output = jsonOutput(write, f.quiet);
  else if (process.stdout.isTTY) {
    const v = VERSION;
    output = screenOutput(process.stdout, f.quiet, () =>
      shown.client ? { client: shown.client, version: v, inspectorUrl: shown.inspector?.url } : undefined,
    );
  } else output = plainOutput(write, f.quiet);
  const warning = cleartextWarning(f.server, f.dial);
  if (warning) process.stderr.write(`${warning}\n`);

  const capture = f.inspect && f.target.proto === 'http' ? new CaptureStore({ keep: f.keep }) : undefined;
  let inspector: Inspector | undefined;
  const client = new TunnelClient({
    server: f.server,
    secret: f.secret,
    name: f.name,
    target: f.target,
    dial: f.dial,
    basicAuth: f.basicAuth,
    remotePort: f.remotePort,
    hostHeader: f.hostHeader,
    pingIntervalMs: f.pingIntervalMs,
    handshakeTimeoutMs: f.handshakeTimeoutMs,
    maxBackoffMs: f.maxBackoffMs,
    capture,
    events: {
      info: (line) => output.info(line),
      exchange: (s) => output.exchange(s),
      tcp: (s) => output.tcp(s),
      changed: () => {
        output.changed();
        inspector?.changed();
      },
    },
  });
  if (f.inspect) {
    inspector = await startInspector(f.inspect, client, capture);
    shown.inspector = inspector;
    const where = `${f.inspect.host}:${f.inspect.port}${f.inspect.lastPort ? `-${f.inspect.lastPort}` : ''}`;
    if (!inspector) {
      if (!f.inspect.lastPort) {
        output.close();
        process.stderr.write(
          `tunnel: the inspector cannot listen on ${where} (in use?); -inspect off to go without\n`,
        );
        process.exit(1);
      }
      output.info(`Inspector not started: ${where} are in use (-inspect ADDR to choose)`);
    } else {
      output.info(`Inspector ${inspector.url}`);
      if (!isLoopbackAddress(f.inspect.host)) {
        process.stderr.write(
          `warning: the inspector on ${inspector.url} shows every request in full, and replays them, to anyone who can reach it\n`,
        );
      }
    }
  }
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) {
      output.close();
      process.exit(130);
    }
    output.info('Closing the tunnel');
    void client.stop();
  };
  // One bad request must not take the tunnel down: report it and keep forwarding.
  process.on('uncaughtException', (err) => process.stderr.write(`tunnel: ${err.stack ?? err.message}\n`));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  shown.client = client;
  client.start();
  const code = await client.done;
  await inspector?.close();
  output.close();
  process.exit(code);
}
