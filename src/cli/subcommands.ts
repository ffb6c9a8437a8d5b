// The subcommands, one entry each: `nodecaddy <name> …` runs `run` with the arguments after the name.
// Each module is loaded only when its subcommand is used.

export interface Subcommand {
  readonly name: string;
  /** One line for help listings. */
  readonly summary: string;
  run(argv: string[]): Promise<void>;
}

export const SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: 'tunnel',
    summary: 'expose a local server through a public nodecaddy (ngrok-style)',
    run: async (argv) => (await import('./tunnel.js')).tunnelMain(argv),
  },
  {
    name: 'reload',
    summary: 'load a Caddyfile into the running server through its admin endpoint',
    run: async (argv) => (await import('./reload.js')).reloadMain(argv),
  },
];
