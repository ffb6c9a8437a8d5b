#!/usr/bin/env node
// nodecaddy's command line: a subcommand (`nodecaddy tunnel …`) loads only its own modules, and the server's
// (the directives, TLS and ACME, the cluster, the admin endpoint) are loaded only to serve. Why: the tunnel
// client is a long-running process on a laptop, and the server's modules it never used were 13 MB of its
// RSS on Node 20 and 18 MB on Node 26 (compiled code and the heap they build when loaded).
import { SUBCOMMANDS } from './cli/subcommands.js';

const argv = process.argv.slice(2);
const subcommand = SUBCOMMANDS.find((s) => s.name === argv[0]);
const serve = subcommand ? await subcommand.run(argv.slice(1)) : { argv, input: undefined };
if (serve) await (await import('./cli/serve.js')).serveMain(serve.argv, serve.input);
