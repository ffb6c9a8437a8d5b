// A minor collection after every few MB of socket reads that a relay consumed. Node gives every read of a
// socket (one without `onread`) a fresh buffer, 64 KB under load, and a relay that moves hundreds of MB/s
// allocates little JavaScript per read, so the young generation fills too slowly for a scavenge to free the
// dead reads: V8 frees them when 64 MB of new external memory has started a full collection. A minor
// collection every 8 MB of reads frees them while they are young. Measured on the TCP tunnel's endless
// stream (the worker relaying it, `-workers 2`): peak RSS 76-81 MB instead of 101-110, 0.50-0.60 ms of CPU
// per MB instead of 0.77-1.16 (fewer full collections, fewer fresh pages).
// Counted where such reads are consumed: the tunnel link's messages, a TCP tunnel's sockets, and request
// bodies that proxy, fastcgi and tunnel forward. Not the proxy's and the tunnel client's own connections:
// they read into one reused buffer (core/h1/buffers.ts), so there is nothing to free.
// `gc` exists where node runs with --expose-gc: the workers and the tunnel client get it with their memory
// flags (cluster/memory-settings.ts). Elsewhere this does nothing.

/** Bytes read between two minor collections. */
export const READ_GC_BYTES = 8 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;

let sinceLast = 0;

/** `bytes` of fresh socket reads were consumed; every READ_GC_BYTES, a minor collection. */
export function countRead(bytes: number): void {
  sinceLast += bytes;
  if (sinceLast < READ_GC_BYTES) return;
  sinceLast = 0;
  // Looked up at each call: node defines it at start, and a test may stand in for it.
  (globalThis as { gc?: Collect }).gc?.({ type: 'minor' });
}
