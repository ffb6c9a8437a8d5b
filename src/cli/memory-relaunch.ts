// The tunnel client (or any process the user starts directly, unlike the workers the primary forks) gets the
// workers' memory settings (cluster/memory-settings.ts) that the user did not set. V8 and glibc read them only
// at process start, so where Node has process.execve (22.15 and later) the process replaces itself with the
// same command plus the settings: same pid, same terminal and file descriptors, no parent left behind. Under
// the small answers of the bench, the client peaked at 136-140 MB without them and 79-85 MB with them.
// Where Node has no execve (Node 20), a parent relaying signals to a child would cost as much memory as it
// saves, so the process keeps its settings and applies at run time what V8 reads again while it runs: the
// heap growing factor (read at every full collection), and the young generation's cap, kept by turning the
// young generation's growth off once it has reached the cap's size (V8 reads its growth factor each time it
// would grow it). The client's young generation otherwise grew to 2 x 16 MB under the bench's small answers
// and stayed there: 97-101 MB during a download after them instead of 75-81.
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { missingMemoryEnv, missingMemoryFlags, SEMI_SPACE_MB } from '../cluster/memory-settings.js';

/** About the growing factor V8 picks for an old space of OLD_SPACE_MB (2x), as a percentage over 1x. */
const HEAP_GROWING_PERCENT = 100;

/** V8's own factor by which the young generation grows (--semi-space-growth-factor). */
const DEFAULT_GROWTH_FACTOR = 2;

/** Set in the environment of the relaunched process: it never relaunches again. */
const RELAUNCHED = 'NODECADDY_MEMORY_RELAUNCHED';

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Call first thing in a command's main: returns at once when nothing is missing (or after the fallback),
 * and otherwise does not return (the process image is replaced by the same command with the settings).
 * `fallback: false`: where the process cannot be replaced, nothing is set at run time (see serve.ts).
 */
export function withMemorySettings(options: { fallback?: boolean } = {}): void {
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
  if (options.fallback === false) return;
  // The old-space flag's effect without the flag: V8's heap grows to 2x what survived, not up to 4x.
  if (flags.some((f) => f.startsWith('--max-old-space-size')))
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  if (flags.some((f) => f.startsWith('--max-semi-space-size'))) capYoungGeneration(SEMI_SPACE_MB);
}

/**
 * Holds V8's young generation at two semi-spaces of `semiSpaceMb` (what --max-semi-space-size would) in a
 * process that started without the flag: after every collection, its growth factor is 1 (no growth) once
 * the young generation is that big, and V8's default of 2 while it is smaller (V8 shrinks it when the
 * process allocates little, and it must be able to grow back). It can overshoot by one doubling only if two
 * collections that both grow it come before this observer runs.
 */
export function capYoungGeneration(semiSpaceMb: number): PerformanceObserver {
  const capBytes = 2 * semiSpaceMb * 1024 * 1024;
  let growing = true;
  const observer = new PerformanceObserver(() => {
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    const grow = young === undefined || young.space_size < capBytes;
    if (grow === growing) return;
    growing = grow;
    v8.setFlagsFromString(`--semi-space-growth-factor=${grow ? DEFAULT_GROWTH_FACTOR : 1}`);
  });
  observer.observe({ entryTypes: ['gc'] });
  return observer;
}
