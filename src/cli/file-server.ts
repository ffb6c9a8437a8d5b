// `nodecaddy file-server`: Caddy 2's one-line static file server, as a generated Caddyfile served by the
// normal path (so it has everything a site has: the file cache, ranges, sidecars, workers, signals).
import { statSync } from 'node:fs';
import path from 'node:path';
import type { FlagSpec } from './flags.js';
import {
  parseCommand,
  quickSiteAddress,
  quote,
  schemePorts,
  SERVE_FLAGS,
  serveArgv,
  splitHostPort,
  usageError,
  type Command,
} from './quick.js';
import type { ServeRequest } from './subcommands.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'root', type: 'string', default: '', usage: 'Directory to serve (default: the current directory)' },
  {
    name: 'listen',
    type: 'string',
    default: '',
    usage:
      'Address to listen on: :port or host:port (default: the -https-port with -domain, else the -http-port)',
  },
  {
    name: 'domain',
    type: 'string',
    default: '',
    usage: 'Serve only this host name, over HTTPS unless -listen is on the -http-port',
  },
  { name: 'browse', type: 'bool', default: 'false', usage: 'List directories that have no index file' },
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
  usage: `Usage: nodecaddy file-server [-root DIR] [-listen ADDR] [-domain HOST] [-browse] [flags]

Serves the files of a directory, as Caddy 2's file-server: index files, ranges,
validators, precompressed sidecars. With -domain it is HTTPS, on port 443 unless
-listen says otherwise, and plain HTTP on port 80 redirects to it: localhost and
internal names get a certificate from the local CA, other names one from the
ACME CA (-agree). Ports below 1024 (80 and 443 by default) need root or
CAP_NET_BIND_SERVICE.

  nodecaddy file-server -listen :8080 -browse
  nodecaddy file-server -domain files.example.com -agree -email ops@example.com

Flags:
`,
};

export function fileServerMain(argv: readonly string[]): ServeRequest {
  const flags = parseCommand(COMMAND, argv);
  const flag = (name: string) => flags.values.get(name)!;
  const cwd = process.cwd();
  const root = path.resolve(cwd, flag('root') || '.');
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) usageError(COMMAND, `-root ${flag('root') || '.'}: no such directory`);
  const ports = schemePorts(flags);
  const domain = flag('domain');
  const named = domain ? splitHostPort(domain) : undefined;
  if (domain && (!named?.host || named.port))
    usageError(COMMAND, `-domain must be a host name without a port (got "${domain}")`);
  // Caddy 2: a domain moves the default listener to the HTTPS port and turns HTTPS on, unless -listen puts it
  // on the HTTP port.
  const listen = flag('listen')
    ? splitHostPort(flag('listen'))
    : { host: '', port: named ? ports.https : ports.http };
  if (!listen?.port) usageError(COMMAND, `-listen must be :port or host:port (got "${flag('listen')}")`);
  const host = named?.host ?? '';
  const address = quickSiteAddress(
    { https: host !== '' && listen.port !== ports.http, host, port: listen.port },
    ports,
  );
  const lines = [
    `${address} {`,
    `\troot ${quote(root)}`,
    ...(listen.host ? [`\tbind ${quote(listen.host)}`] : []),
    ...(flag('browse') === 'true' ? ['\tbrowse'] : []),
    ...(flag('access-log') === 'true' ? ['\tlog stdout'] : []),
    '}',
  ];
  return {
    argv: serveArgv(flags),
    input: { text: `${lines.join('\n')}\n`, name: 'file-server', baseDir: cwd },
  };
}
