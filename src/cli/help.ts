// `nodecaddy help [command]`: the main usage with the list of commands, or one command's usage and flags
// (every command prints those for -h).
import { formatUsage } from './flags.js';
import { commandList, FLAGS, USAGE_HEAD } from './options.js';
import { SUBCOMMANDS } from './subcommands.js';

export async function helpMain(argv: readonly string[]): Promise<void> {
  const name = argv[0];
  if (name === undefined || name === '-h' || name === '-help' || name === '--help') {
    process.stdout.write(`${USAGE_HEAD}${formatUsage(FLAGS)}\n`);
    process.exit(0);
  }
  const command = argv.length === 1 ? SUBCOMMANDS.find((c) => c.name === name) : undefined;
  if (!command) {
    const what = argv.length === 1 ? `unknown command "${name}"` : 'usage: nodecaddy help [command]';
    process.stderr.write(`${what}\n\nCommands:\n${commandList()}\n`);
    process.exit(2);
  }
  await command.run(['-h']);
}
