// The flags nodecaddy accepts (Caddy v1's, less telemetry, plus -watch, -data and -admin).
import { DEFAULT_ADMIN } from '../admin/address.js';
import { DEFAULT_CA } from '../certs/acme/plan.js';
import type { FlagSpec } from './flags.js';
import { SUBCOMMANDS } from './subcommands.js';

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'conf',
    type: 'string',
    default: '',
    usage: 'Caddyfile to load (default "Caddyfile"); "stdin" reads a pipe',
  },
  {
    name: 'root',
    type: 'string',
    default: '.',
    usage: 'Root path of the default site, and the starting root of every site',
  },
  { name: 'host', type: 'string', default: '', usage: 'Default host for addresses without one' },
  { name: 'port', type: 'string', default: '2015', usage: 'Default port for addresses without one' },
  {
    name: 'http-port',
    type: 'string',
    default: '80',
    usage: 'The port that means plain HTTP (http:// addresses), where HTTP → HTTPS redirects listen',
  },
  {
    name: 'https-port',
    type: 'string',
    default: '443',
    usage: 'The port that means HTTPS (https:// addresses)',
  },
  { name: 'http2', type: 'bool', default: 'true', usage: 'Offer HTTP/2 on HTTPS listeners (ALPN h2)' },
  {
    name: 'agree',
    type: 'bool',
    default: 'false',
    usage: "Agree to the ACME CA's subscriber agreement (needed for automatic HTTPS)",
  },
  {
    name: 'email',
    type: 'string',
    default: '',
    usage: 'Default ACME account email (the CA sends notices to it)',
  },
  { name: 'ca', type: 'string', default: DEFAULT_CA, usage: 'URL of the ACME CA directory' },
  { name: 'catimeout', type: 'string', default: '30s', usage: 'Longest wait for one request to the ACME CA' },
  {
    name: 'disable-http-challenge',
    type: 'bool',
    default: 'false',
    usage: 'Never use the ACME HTTP-01 challenge',
  },
  {
    name: 'disable-tls-alpn-challenge',
    type: 'bool',
    default: 'false',
    usage: 'Never use the ACME TLS-ALPN-01 challenge',
  },
  {
    name: 'data',
    type: 'string',
    default: '',
    usage:
      'Folder for certificates and the local CA (default $NODECADDY_DATA, else ~/.local/share/nodecaddy)',
  },
  {
    name: 'storage',
    type: 'string',
    default: '',
    usage:
      'Where certificates and cluster state live: file:///folder (default: -data) or redis://[user:password@]host:6379/0; instances sharing one form a cluster ($NODECADDY_STORAGE)',
  },
  {
    name: 'cluster-listen',
    type: 'string',
    default: '',
    usage:
      'host:port of the relay listener other instances dial to reach tunnels held here (needs redis storage)',
  },
  {
    name: 'cluster-advertise',
    type: 'string',
    default: '',
    usage: 'host:port the other instances dial, when it is not the -cluster-listen address',
  },
  {
    name: 'cluster-secret',
    type: 'string',
    default: '',
    usage:
      'Shared secret that authenticates instances to each other and encrypts what a redis storage holds (needed with one; $NODECADDY_CLUSTER_SECRET keeps it out of ps)',
  },
  {
    name: 'instance-id',
    type: 'string',
    default: '',
    usage: 'This instance in the cluster registry, logs and metrics (default: host name plus a random part)',
  },
  {
    name: 'grace',
    type: 'string',
    default: '5s',
    usage: 'Maximum duration of a graceful shutdown or config swap',
  },
  {
    name: 'log',
    type: 'string',
    default: 'stderr',
    usage: 'Process log: stderr, stdout, off, or a file path',
  },
  {
    name: 'log-format',
    type: 'string',
    default: 'auto',
    usage: 'Process log format: text, json, or auto (text on a terminal, else JSON lines)',
  },
  {
    name: 'workers',
    type: 'string',
    default: '',
    usage: 'Worker processes that serve (node:cluster); 1 serves in this process (default: number of CPUs)',
  },
  {
    name: 'admin',
    type: 'string',
    default: DEFAULT_ADMIN,
    usage:
      'Admin endpoint (metrics, upstreams, config, POST /load): host:port, or off; $NODECADDY_ADMIN sets the default',
  },
  { name: 'pidfile', type: 'string', default: '', usage: 'Path to write the process id to' },
  {
    name: 'envfile',
    type: 'string',
    default: '',
    usage: 'File of KEY=VALUE lines loaded into the environment first',
  },
  { name: 'env', type: 'bool', default: 'false', usage: 'Print the environment at startup' },
  { name: 'quiet', type: 'bool', default: 'false', usage: 'Quiet mode (no startup output)' },
  {
    name: 'validate',
    type: 'bool',
    default: 'false',
    usage: 'Parse the Caddyfile and run every directive setup, then exit',
  },
  {
    name: 'watch',
    type: 'bool',
    default: 'true',
    usage: 'Reload when the Caddyfile or a file it imports changes',
  },
  {
    name: 'version',
    type: 'bool',
    default: 'false',
    usage: 'Show version (and which gzip compresses whole bodies)',
  },
  { name: 'caddyfile-to-json', type: 'bool', default: 'false', usage: 'From Caddyfile stdin to JSON stdout' },
  { name: 'json-to-caddyfile', type: 'bool', default: 'false', usage: 'From JSON stdin to Caddyfile stdout' },
];

/** One line per subcommand, for the usage text and `nodecaddy help`. */
export function commandList(): string {
  const width = Math.max(...SUBCOMMANDS.map((c) => c.name.length));
  return SUBCOMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
}

export const USAGE_HEAD = `Usage: nodecaddy [flags] [directive lines...]
       nodecaddy <command> [flags]

Serves the sites of a Caddyfile (Caddy v1 syntax). With no Caddyfile and no
arguments it serves the current directory on :2015. Positional arguments form a
short Caddyfile, one directive per argument: nodecaddy "root ./public" browse

Commands:
${commandList()}

"nodecaddy help <command>" (or "nodecaddy <command> -h") shows a command's flags.

Flags:
`;
