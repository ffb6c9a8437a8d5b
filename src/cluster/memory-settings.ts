// The memory settings nodecaddy gives the processes that serve (cluster workers) and the tunnel client, unless
// the user set their own (measured with `npm run bench`; the README's section on workers says the same):
// - V8's young generation capped at 2 x 4 MB semi-spaces. Node lets it grow to 2 x 16 MB under load: up to
//   24 MB more RSS per busy process. The extra scavenges measured 0.3 µs per static file and a few µs per
//   proxied request at most, within the noise. (2 x 1 MB took 5 MB off the TCP tunnel's busy worker, whose
//   dead socket reads wait for the next scavenge, but cost the proxy ~15% of its requests per second.)
// - Array buffers freed by the collection that found them dead, not later by a background thread: V8 counts
//   the bytes not freed yet towards its next full collection, so with concurrent sweeping the worker relaying
//   a TCP tunnel's stream at 600-800 MB/s ran ~3x as many full GCs and spent 1.1-1.9 ms of CPU per MB instead
//   of 0.6-1.2 (the same RSS). Static files and proxied requests: within the noise.
// - `gc` exposed (--expose-gc), for a minor collection after every 8 MB of socket reads consumed
//   (core/read-gc.ts): the TCP tunnel's busy worker peaked at 76-81 MB instead of 101-110 and spent a third
//   less CPU per MB.
// - An old generation of at most 2047 MB where V8 would allow more (it allows a quarter of the RAM, up to
//   4 GB). Below 2 GB V8 lets the old generation grow to about 2x what survived the last full GC before the
//   next one, instead of 4x: the tunnel's busy worker peaked at ~86 MB instead of ~108 MB, its full GCs
//   taking 1% of its time instead of 0.3%. Where little survives (files, proxy) nothing changes.
// - Two glibc malloc arenas instead of one per thread-pool thread (zlib and fs work fragmented them).
// V8 reads the semi-space and old-space flags and glibc the arenas only when a process starts; V8 reads the
// sweeping flag at every collection.
import v8 from 'node:v8';

/** The young generation's cap: two semi-spaces of this many MB. */
export const SEMI_SPACE_MB = 4;
export const SEMI_SPACE_FLAG = `--max-semi-space-size=${SEMI_SPACE_MB}`;
export const ARRAY_BUFFER_SWEEPING_FLAG = '--no-concurrent-array-buffer-sweeping';
export const EXPOSE_GC_FLAG = '--expose-gc';
/** Just under the 2 GB (2 x 1 GB on 64-bit) from which V8 uses its largest heap growing factor. */
export const OLD_SPACE_MB = 2047;
export const MEMORY_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** Where V8's own heap limit is above this, the old-space flag lowers its growing factor. */
const OLD_SPACE_APPLIES_ABOVE = (OLD_SPACE_MB + 128) * 1024 * 1024;

/** A V8 flag's name without its value or negation: --no-foo_bar=1 and --foo-bar are the same flag. */
function flagName(flag: string): string {
  return flag
    .split('=')[0]
    .replace(/^--(no-?)?/, '')
    .replaceAll('_', '-');
}

/** The memory flags of node that are not already given on its command line or in NODE_OPTIONS. */
export function missingMemoryFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
  heapSizeLimit: number = v8.getHeapStatistics().heap_size_limit,
): string[] {
  const flags = [SEMI_SPACE_FLAG, ARRAY_BUFFER_SWEEPING_FLAG, EXPOSE_GC_FLAG];
  // With the user's own (or V8's default on a small machine) limit below 2 GB, the flag is not added.
  if (heapSizeLimit > OLD_SPACE_APPLIES_ABOVE) flags.push(`--max-old-space-size=${OLD_SPACE_MB}`);
  const given = new Set(
    [...execArgv, ...nodeOptions.split(/\s+/)].filter((g) => g.startsWith('--')).map(flagName),
  );
  return flags.filter((f) => !given.has(flagName(f)));
}

/** The memory environment variables the environment does not set already. */
export function missingMemoryEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const missing: Record<string, string> = {};
  for (const [name, value] of Object.entries(MEMORY_ENV)) if (env[name] === undefined) missing[name] = value;
  return missing;
}
