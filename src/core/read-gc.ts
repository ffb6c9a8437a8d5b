// Collections paced by socket reads. Node gives every read of a socket (one without `onread`) a fresh
// buffer, 64 KB under load, and a relay that moves hundreds of MB/s allocates little JavaScript per read, so
// the young generation fills too slowly for a scavenge to free the dead reads: V8 frees them when 64 MB of
// new external memory has started a full collection. A minor collection every 8 MB of reads frees them while
// they are young. Measured on the TCP tunnel's endless stream (the worker relaying it, `-workers 2`): peak
// RSS 76-81 MB instead of 101-110, 0.50-0.60 ms of CPU per MB instead of 0.77-1.16 (fewer full collections,
// fewer fresh pages). When the reads stop for 5 s after that, one full collection: V8 would keep what the
// transfer left in its old generation until the next load (the same worker 15 s after the stream: 70-72 MB
// instead of 76-78; 57-58 when it had served nothing).
// Counted where such reads are consumed: the tunnel link's messages, a TCP tunnel's sockets, and request
// bodies that proxy, fastcgi and tunnel forward. Not the proxy's and the tunnel client's own connections:
// they read into one reused buffer (core/h1/buffers.ts), so there is nothing to free.
// `gc` exists where node runs with --expose-gc: the workers and the tunnel client get it with their memory
// flags (cluster/memory-settings.ts). Elsewhere this does nothing.
import { IdleTrim } from './idle-trim.js';

/** Bytes read between two minor collections. */
export const READ_GC_BYTES = 8 * 1024 * 1024;
/** Reads stopped for this long after a minor collection: one full collection. */
export const QUIET_MS = 5000;

type Collect = (options: { type: 'minor' | 'major' }) => void;

/** Looked up at each call: node defines it at start, and a test may stand in for it. */
function gc(): Collect | undefined {
  return (globalThis as { gc?: Collect }).gc;
}

export class ReadCollector {
  private readonly everyBytes: number;
  private sinceLast = 0;
  private readonly quiet: IdleTrim;

  constructor(everyBytes = READ_GC_BYTES, quietMs = QUIET_MS) {
    this.everyBytes = everyBytes;
    this.quiet = new IdleTrim(quietMs, () => gc()?.({ type: 'major' }));
  }

  /** `bytes` of fresh socket reads were consumed. */
  count(bytes: number): void {
    this.sinceLast += bytes;
    if (this.sinceLast < this.everyBytes) return;
    this.sinceLast = 0;
    const collect = gc();
    if (!collect) return;
    collect({ type: 'minor' });
    this.quiet.used();
    this.quiet.arm();
  }
}

const collector = new ReadCollector();

/** `bytes` of fresh socket reads were consumed: a minor collection every READ_GC_BYTES, a full one when quiet. */
export function countRead(bytes: number): void {
  collector.count(bytes);
}
