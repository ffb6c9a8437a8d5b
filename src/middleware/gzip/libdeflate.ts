// The libdeflate binding (native/deflate.c, built into build/native/deflate.node by native/build.js), which
// gzips whole bodies in the thread pool: on the bench's 100 KB page, at the same level, about 1.2-2.4x less
// CPU than zlib and output no larger. Where it was not built (no C compiler or libdeflate) or cannot load
// (another platform than the one it was built on), gzip uses node:zlib for every body, as before.
import { createRequire } from 'node:module';

export interface Libdeflate {
  /** gzip of the whole `input` at `level` (0-12) in the thread pool; `input` must not change meanwhile. */
  gzip(input: Uint8Array, level: number, done: (err: Error | null, out: Buffer) => void): void;
  /** Frees the compressors kept idle for reuse (about 650 KB each at levels 2-9); returns how many. */
  trim(): number;
  /** libdeflate's version, as built. */
  readonly version: string;
}

function load(): { binding?: Libdeflate; missing?: string } {
  // NODECADDY_GZIP=zlib turns the binding off: to compare the two, and to test the zlib path.
  if (process.env.NODECADDY_GZIP === 'zlib') return { missing: 'turned off by NODECADDY_GZIP=zlib' };
  try {
    // From build/src/middleware/gzip/ to build/native/.
    return { binding: createRequire(import.meta.url)('../../../native/deflate.node') as Libdeflate };
  } catch (err) {
    return { missing: (err as Error).message.split('\n')[0] };
  }
}

const loaded = load();
/** The binding, or undefined where gzip uses node:zlib for whole bodies too. */
export const libdeflate: Libdeflate | undefined = loaded.binding;
/** Why the binding is not used (for `nodecaddy -version`), or undefined when it is. */
export const libdeflateMissing: string | undefined = loaded.missing;
