// A CommonJS dependency loaded on its first use instead of when the process starts. Some dependencies are big
// and needed only by some configurations (acme-client and @peculiar/x509 to make certificates, @redis/client
// for -storage redis://): loaded at startup they cost every worker and the tunnel client megabytes of heap
// that stay alive, and V8 lets the heap grow in proportion to what stays alive.
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/**
 * A getter of the module `id`, loaded (and passed to `init` once) on the first call. Import its types with
 * `import type` only: a value import would load it at startup again.
 */
export function lazyRequire<T>(id: string, init?: (loaded: T) => void): () => T {
  let loaded: T | undefined;
  return () => {
    if (loaded === undefined) {
      loaded = requireHere(id) as T;
      init?.(loaded);
    }
    return loaded;
  };
}
