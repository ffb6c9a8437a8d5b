// A stand-in for node's gc (there with --expose-gc) that records how it was called.
export type Gc = { gc?: (options: unknown) => void };

/** Runs `body` with a `gc` that records its calls in place of node's (or of none). */
export function withCountingGc(body: (calls: unknown[]) => Promise<void> | void): Promise<void> {
  const g = globalThis as Gc;
  const own = g.gc;
  const calls: unknown[] = [];
  g.gc = (options) => calls.push(options);
  return Promise.resolve()
    .then(() => body(calls))
    .finally(() => {
      if (own) g.gc = own;
      else delete g.gc;
    });
}
