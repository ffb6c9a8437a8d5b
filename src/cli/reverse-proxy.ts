// `nodecaddy reverse-proxy`: Caddy 2's one-line reverse proxy, as a generated Caddyfile served by the normal
// path. As Caddy 2: the client's Host is passed on (unless -change-host-header), WebSockets pass, several
// -to are balanced at random.
import type { FlagSpec } from './flags.js';
import {
  DEFAULT_PORT,
  listFlag,
  noteNoHttps,
  parseCommand,
  quote,
  SERVE_FLAGS,
  serveArgv,
  siteAddress,
  splitHostPort,
  usageError,
  type Command,
} from './quick.js';
import type { ServeRequest } from './subcommands.js';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'from',
    type: 'string',
    default: 'localhost',
    usage: 'Address to receive traffic on: [http://]host[:port] or :port (port 80 by default)',
  },
  {
    name: 'to',
    type: 'string',
    default: '',
    usage: 'Upstream: port, host:port, http(s)://host:port or unix:/path; repeat for several (required)',
  },
  {
    name: 'change-host-header',
    type: 'bool',
    default: 'false',
    usage: "Send the upstream's own host:port as Host (default: the client's Host)",
  },
  {
    name: 'header-up',
    type: 'string',
    default: '',
    usage: 'Set a request header for the upstream, "Field: value"; repeat for several',
  },
  {
    name: 'header-down',
    type: 'string',
    default: '',
    usage: 'Set a response header for the client, "Field: value"; repeat for several',
  },
  {
    name: 'insecure',
    type: 'bool',
    default: 'false',
    usage: "Do not verify an https:// upstream's certificate (insecure)",
  },
  {
    name: 'access-log',
    type: 'bool',
    default: 'false',
    usage: 'Write an access log line per request to stdout',
  },
  ...SERVE_FLAGS,
];

const COMMAND: Command = {
  flags: FLAGS,
  usage: `Usage: nodecaddy reverse-proxy [-from ADDR] -to UPSTREAM [-to UPSTREAM...] [flags]

Proxies every request received on -from to the -to upstreams, as Caddy 2's
reverse-proxy: the client's Host header is passed on, WebSockets and streamed
responses pass, several upstreams are balanced at random. A host name in -from
serves only that host. Ports below 1024 (the default 80) need root or
CAP_NET_BIND_SERVICE.

  nodecaddy reverse-proxy -from :8080 -to localhost:3000

Flags:
`,
};

export function reverseProxyMain(argv: readonly string[]): ServeRequest {
  const flags = parseCommand(COMMAND, argv);
  const flag = (name: string) => flags.values.get(name)!;
  const from = parseFrom(flag('from'));
  const upstreams = listFlag(flags, 'to', true).map(upstream);
  if (upstreams.length === 0) usageError(COMMAND, '-to is required');
  const rules = [
    ...(flag('change-host-header') === 'true' ? [] : ['\t\theader_upstream Host {host}']),
    ...listFlag(flags, 'header-up').map((h) => `\t\theader_upstream ${headerRule('header-up', h)}`),
    ...listFlag(flags, 'header-down').map((h) => `\t\theader_downstream ${headerRule('header-down', h)}`),
    ...(flag('insecure') === 'true' ? ['\t\tinsecure_skip_verify'] : []),
  ];
  const lines = [
    `${siteAddress(from.host, from.port)} {`,
    `\tproxy / ${upstreams.map(quote).join(' ')} {`,
    '\t\twebsocket',
    ...rules,
    '\t}',
    ...(flag('access-log') === 'true' ? ['\tlog stdout'] : []),
    '}',
  ];
  const cwd = process.cwd();
  return {
    argv: serveArgv(flags),
    input: { text: `${lines.join('\n')}\n`, name: 'reverse-proxy', baseDir: cwd },
  };
}

/** Caddy 2's -from: a scheme is optional, a path is not allowed; the port defaults to 80. */
function parseFrom(value: string): { host: string; port: string } {
  let rest = value;
  const scheme = /^([a-z]+):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1].toLowerCase() === 'https')
      usageError(COMMAND, `-from ${value}: HTTPS is not supported yet; use http:// or a plain address`);
    if (scheme[1].toLowerCase() !== 'http')
      usageError(COMMAND, `-from ${value}: unknown scheme ${scheme[1]}`);
    rest = rest.slice(scheme[0].length);
  }
  if (rest.includes('/')) usageError(COMMAND, `-from ${value}: paths are not allowed`);
  const addr = splitHostPort(rest);
  if (!addr) usageError(COMMAND, `-from must be [http://]host[:port] or :port (got "${value}")`);
  const port = addr.port || DEFAULT_PORT;
  noteNoHttps(!scheme && addr.host !== '' && port !== '80', `http://${siteAddress(addr.host, port)}`);
  return { host: addr.host, port };
}

/** `3000` and `:3000` mean localhost, as Caddy 2 dials them; anything else goes to the proxy as it is. */
function upstream(value: string): string {
  if (/^:?\d+$/.test(value)) return `localhost:${value.replace(/^:/, '')}`;
  return value;
}

/** `Field: value` → the two tokens of a header rule (the value may hold spaces). */
function headerRule(flag: string, value: string): string {
  const colon = value.indexOf(':');
  const name = colon < 0 ? '' : value.slice(0, colon).trim();
  const v = colon < 0 ? '' : value.slice(colon + 1).trim();
  if (!name || !v || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
    usageError(COMMAND, `-${flag} must be "Field: value" (got "${value}")`);
  return `${quote(name)} ${quote(v)}`;
}
