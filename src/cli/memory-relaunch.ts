// The tunnel client (or any process the user starts directly, unlike the workers the primary forks) gets the
// workers' memory settings (cluster/memory-settings.ts) that the user did not set. V8 and glibc read them only
// at process start, so where Node has process.execve (22.15 and later) the process replaces itself with the
// same command plus the settings: same pid, same terminal and file descriptors, no parent left behind. Under
// the small answers of the bench, the client peaked at 136-140 MB without them and 79-85 MB with them.
// Where Node has no execve (Node 20), a parent relaying signals to a child would cost as much memory as it
// saves (it has loaded the whole program by then), so the process keeps its settings and only lowers V8's heap
// growing factor, the one setting V8 reads again at every collection (110-112 MB in the same runs).
import v8 from 'node:v8';
import { missingMemoryEnv, missingMemoryFlags } from '../cluster/memory-settings.js';

/** About the growing factor V8 picks for an old space of OLD_SPACE_MB (2x), as a percentage over 1x. */
const HEAP_GROWING_PERCENT = 100;

/** Set in the environment of the relaunched process: it never relaunches again. */
const RELAUNCHED = 'NODECADDY_MEMORY_RELAUNCHED';

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Call first thing in a command's main: returns at once when nothing is missing (or after the fallback),
 * and otherwise does not return (the process image is replaced by the same command with the settings).
 */
export function withMemorySettings(): void {
  if (process.env[RELAUNCHED] !== undefined) {
    delete process.env[RELAUNCHED];
    return;
  }
  const flags = missingMemoryFlags();
  const env = missingMemoryEnv();
  if (flags.length === 0 && Object.keys(env).length === 0) return;
  const execve = (process as { execve?: Execve }).execve;
  if (typeof execve === 'function') {
    try {
      execve.call(
        process,
        process.execPath,
        [process.execPath, ...process.execArgv, ...flags, ...process.argv.slice(1)],
        { ...process.env, ...env, [RELAUNCHED]: '1' },
      );
    } catch {
      // Not replaced (e.g. the binary moved): run on with what can be set now.
    }
  }
  // The old-space flag's effect without the flag: V8's heap grows to 2x what survived, not up to 4x.
  if (flags.some((f) => f.startsWith('--max-old-space-size')))
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
