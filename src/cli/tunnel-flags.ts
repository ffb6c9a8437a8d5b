// The flags of `nodecaddy tunnel`, and turning their text into checked values.
import { isLoopback } from '../tunnel/transport.js';
import type { FlagSpec } from './flags.js';

export { isLoopback };

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
  {
    name: 'name',
    type: 'string',
    default: '',
    usage: 'Name to claim: alice serves alice.<server host> (a TCP tunnel gets a random one if unset)',
  },
  {
    name: 'to',
    type: 'string',
    default: '',
    usage: 'Local target: port, host:port or http://host:port; tcp://host:port for a TCP tunnel',
  },
  { name: 'tcp', type: 'string', default: '', usage: 'Expose a TCP service instead: port or host:port' },
  {
    name: 'remote-port',
    type: 'string',
    default: '',
    usage: "Public port for a TCP tunnel (one of the site's tcp_ports); default: any free one",
  },
  {
    name: 'basic-auth',
    type: 'string',
    default: '',
    usage: 'user:pass every visitor must give; checked by the server before a request reaches you',
  },
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
  {
    name: 'inspect',
    type: 'string',
    default: '',
    usage:
      'Inspector and agent API address (default 127.0.0.1:4040, or the next free port up to 4050), or off',
  },
  {
    name: 'inspect-keep',
    type: 'string',
    default: '500',
    usage: 'Requests the inspector keeps (bodies up to 1 MB each, 64 MB in all)',
  },
  { name: 'ping', type: 'string', default: '15s', usage: 'Heartbeat interval; a missed answer reconnects' },
  { name: 'timeout', type: 'string', default: '10s', usage: 'Longest connection handshake' },
  { name: 'max-backoff', type: 'string', default: '30s', usage: 'Longest wait between reconnects' },
  {
    name: 'log-format',
    type: 'string',
    default: 'text',
    usage: 'text (a status screen on a terminal, lines otherwise) or json (JSON lines)',
  },
  { name: 'quiet', type: 'bool', default: 'false', usage: 'No line per request' },
];

export type Target = { proto: 'http' | 'tcp'; host: string; port: number };

/** `3000`, `localhost:3000`, `[::1]:3000`, `http://localhost:3000`, `tcp://db:5432` → target. */
export function parseTarget(value: string, proto: 'http' | 'tcp' = 'http'): Target | undefined {
  let v = value.replace(/\/$/, '');
  const scheme = /^(https?|tcp):\/\//.exec(v);
  if (scheme) {
    if (scheme[1] === 'https') return undefined;
    proto = scheme[1] === 'tcp' ? 'tcp' : 'http';
    v = v.slice(scheme[0].length);
  }
  if (/^\d+$/.test(v)) v = `localhost:${v}`;
  const m = /^(?:\[([^\]]+)\]|([^:[\]/]+)):(\d+)$/.exec(v);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { proto, host: m[1] ?? m[2], port };
}

/** `127.0.0.1:4040`, `:4040`, `4040`, `[::1]:4040` → host and port (loopback when the host is left out). */
export function parseListenAddress(value: string): { host: string; port: number } | undefined {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Plain http to another machine carries the secret (and every request) readable by anyone on the way. */
export function cleartextWarning(server: URL, dial: { host: string } | undefined): string | undefined {
  if (server.protocol !== 'http:' && server.protocol !== 'ws:') return undefined;
  if (isLoopback(dial?.host ?? server.hostname)) return undefined;
  return (
    `warning: -server ${server.protocol}//${server.host} is not encrypted: the tunnel secret and all ` +
    'tunnelled traffic cross the network in clear text; use https://'
  );
}
