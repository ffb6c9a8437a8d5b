// The subcommands, one entry each: `nodecaddy <name> …` runs `run` with the arguments after the name, and
// `nodecaddy -h` / `nodecaddy help` list them. Each module is loaded only when its subcommand is used.
// A subcommand that is a Caddyfile in disguise (file-server, reverse-proxy) returns that Caddyfile and the
// serving flags, and the normal path serves it: the same loading, workers, signals and listing as any site.
import type { CaddyfileInput } from '../app.js';

export interface ServeRequest {
  /** Flags for the normal serving path (`-workers 1`, `-log off`, …). */
  readonly argv: string[];
  readonly input: CaddyfileInput;
}

export interface Subcommand {
  readonly name: string;
  /** One line for help listings. */
  readonly summary: string;
  /** Runs the command (`-h` prints its usage and flags); or returns what the serving path should serve. */
  run(argv: string[]): Promise<ServeRequest | void>;
}

export const SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: 'file-server',
    summary: 'serve a directory: nodecaddy file-server -root ./public -listen :8080 -browse',
    run: async (argv) => (await import('./file-server.js')).fileServerMain(argv),
  },
  {
    name: 'reverse-proxy',
    summary: 'proxy to upstreams: nodecaddy reverse-proxy -from :8080 -to localhost:3000',
    run: async (argv) => (await import('./reverse-proxy.js')).reverseProxyMain(argv),
  },
  {
    name: 'tunnel',
    summary: 'expose a local server through a public nodecaddy (ngrok-style)',
    run: async (argv) => (await import('./tunnel.js')).tunnelMain(argv),
  },
  {
    name: 'help',
    summary: 'list the commands, or show the flags of one: nodecaddy help file-server',
    run: async (argv) => (await import('./help.js')).helpMain(argv),
  },
  {
    name: 'reload',
    summary: 'load a Caddyfile into the running server through its admin endpoint',
    run: async (argv) => (await import('./reload.js')).reloadMain(argv),
  },
];
