// `nodecaddy file-server`: Caddy 2's one-line static file server, as a generated Caddyfile served by the
// normal path (so it has everything a site has: the file cache, ranges, sidecars, workers, signals).
import { statSync } from 'node:fs';
import path from 'node:path';
import type { FlagSpec } from './flags.js';
import {
  DEFAULT_PORT,
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
  { name: 'root', type: 'string', default: '', usage: 'Directory to serve (default: the current directory)' },
  {
    name: 'listen',
    type: 'string',
    default: '',
    usage: `Address to listen on: :port or host:port (default ":${DEFAULT_PORT}")`,
  },
  { name: 'domain', type: 'string', default: '', usage: 'Serve only requests for this host name' },
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
validators, precompressed sidecars. Ports below 1024 (the default 80) need root
or CAP_NET_BIND_SERVICE.

  nodecaddy file-server -listen :8080 -browse

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
  const listen = flag('listen') ? splitHostPort(flag('listen')) : { host: '', port: DEFAULT_PORT };
  if (!listen?.port) usageError(COMMAND, `-listen must be :port or host:port (got "${flag('listen')}")`);
  const domain = flag('domain').toLowerCase();
  if (domain && !splitHostPort(domain)?.host)
    usageError(COMMAND, `-domain must be a host name (got "${domain}")`);
  noteNoHttps(domain !== '' && listen.port !== '80', `http://${siteAddress(domain, listen.port)}`);
  const lines = [
    `${siteAddress(domain, listen.port)} {`,
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
