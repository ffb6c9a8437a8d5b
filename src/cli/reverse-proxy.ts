// `nodecaddy reverse-proxy`: Caddy 2's one-line reverse proxy, as a generated Caddyfile served by the normal
// path. As Caddy 2: the client's Host is passed on (unless -change-host-header), WebSockets pass, several
// -to are balanced at random.
import type { FlagSpec } from './flags.js';
import {
  listFlag,
  parseCommand,
  quickSiteAddress,
  quote,
  schemePorts,
  SERVE_FLAGS,
  serveArgv,
  splitHostPort,
  usageError,
  type Command,
  type QuickAddress,
  type SchemePorts,
} from './quick.js';
import type { ServeRequest } from './subcommands.js';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'from',
    type: 'string',
    default: 'localhost',
    usage:
      'Address to receive traffic on: [http(s)://]host[:port] or :port; a host means HTTPS, on the -https-port unless a port is given',
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
    name: 'internal-certs',
    type: 'bool',
    default: 'false',
    usage: 'Get the HTTPS certificate from the local CA, even for a public name (as `tls internal`)',
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
responses pass, several upstreams are balanced at random. A host in -from serves
only that host, over HTTPS (on port 443 unless -from gives a port, with plain
HTTP on port 80 redirecting to it): localhost, IPs and internal names get a
certificate from the local CA, other names one from the ACME CA (-agree).
-from http://… or a port-only -from (:8080) stays plain HTTP. Ports below 1024
need root or CAP_NET_BIND_SERVICE.

  nodecaddy reverse-proxy -from :8080 -to localhost:3000
  nodecaddy reverse-proxy -from app.example.com -to localhost:3000 -agree

Flags:
`,
};

export function reverseProxyMain(argv: readonly string[]): ServeRequest {
  const flags = parseCommand(COMMAND, argv);
  const flag = (name: string) => flags.values.get(name)!;
  const ports = schemePorts(flags);
  const from = parseFrom(flag('from'), ports);
  const upstreams = listFlag(flags, 'to', true).map(upstream);
  if (upstreams.length === 0) usageError(COMMAND, '-to is required');
  const rules = [
    ...(flag('change-host-header') === 'true' ? [] : ['\t\theader_upstream Host {host}']),
    ...listFlag(flags, 'header-up').map((h) => `\t\theader_upstream ${headerRule('header-up', h)}`),
    ...listFlag(flags, 'header-down').map((h) => `\t\theader_downstream ${headerRule('header-down', h)}`),
    ...(flag('insecure') === 'true' ? ['\t\tinsecure_skip_verify'] : []),
  ];
  const lines = [
    `${quickSiteAddress(from, ports)} {`,
    ...(from.https && flag('internal-certs') === 'true' ? ['\ttls internal'] : []),
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

/**
 * Caddy 2's -from: a scheme is optional, a path is not allowed. Without a scheme, a host means HTTPS unless the
 * port is the HTTP port, and no host means plain HTTP; the port defaults to the scheme's.
 */
function parseFrom(value: string, ports: SchemePorts): QuickAddress {
  let rest = value;
  let scheme = '';
  const given = /^([a-z]+):\/\//i.exec(rest);
  if (given) {
    scheme = given[1].toLowerCase();
    if (scheme !== 'http' && scheme !== 'https')
      usageError(COMMAND, `-from ${value}: unknown scheme ${given[1]}`);
    rest = rest.slice(given[0].length);
  }
  if (rest.includes('/')) usageError(COMMAND, `-from ${value}: paths are not allowed`);
  const addr = splitHostPort(rest);
  if (!addr) usageError(COMMAND, `-from must be [http(s)://]host[:port] or :port (got "${value}")`);
  const https = scheme ? scheme === 'https' : addr.host !== '' && addr.port !== ports.http;
  const port = addr.port || (https ? ports.https : ports.http);
  // The ports keep their meaning, as in a Caddyfile (core/address.ts): no http:// on the HTTPS port, nor https://
  // on the HTTP port.
  if (scheme && port === (https ? ports.http : ports.https))
    usageError(COMMAND, `-from ${value}: ${scheme}:// on the ${https ? 'HTTP' : 'HTTPS'} port ${port}`);
  return { https, host: addr.host, port };
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
