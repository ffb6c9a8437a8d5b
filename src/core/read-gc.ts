// Collections paced by socket reads. Node gives every read of a socket (one without `onread`) a fresh
// buffer, 64 KB under load, and a relay that moves hundreds of MB/s allocates little JavaScript per read, so
// the young generation fills too slowly for a scavenge to free the dead reads: V8 frees them when 64 MB of
// new external memory has started a full collection. A minor collection every 8 MB of reads frees them while
// they are young. Measured on the TCP tunnel's endless stream (the worker relaying it, `-workers 2`): peak
// RSS 76-81 MB instead of 101-110, 0.50-0.60 ms of CPU per MB instead of 0.77-1.16 (fewer full collections,
// fewer fresh pages). When the traffic has stopped for 3 s after a transfer, one full collection: V8 would
// keep what the transfer left in its heap until the next load (the same worker 15 s after the stream: 70-72
// MB instead of 76-78; 57-58 when it had served nothing).
// Counted where such reads are consumed: the tunnel link's messages, a TCP tunnel's sockets, and request
// bodies that proxy, fastcgi and tunnel forward. Not the proxy's and the tunnel client's own connections:
// they read into one reused buffer (core/h1/buffers.ts), so there is nothing to free. What the link sends
// (the tunnel client's downloads leave that way) counts towards the quiet collection only.
// `gc` exists where node runs with --expose-gc: the workers and the tunnel client get it with their memory
// flags (cluster/memory-settings.ts). Elsewhere this does nothing.
import { IdleTrim } from './idle-trim.js';

/** Bytes read between two minor collections. */
export const READ_GC_BYTES = 8 * 1024 * 1024;
/** Traffic stopped for this long after a transfer: one full collection. */
export const QUIET_MS = 3000;

type Collect = (options?: { type: 'minor' | 'major'; execution?: 'sync'; flavor?: 'last-resort' }) => void;

/** Looked up at each call: node defines it at start, and a test may stand in for it. */
function gc(): Collect | undefined {
  return (globalThis as { gc?: Collect }).gc;
}

/**
 * The full collection when quiet. From V8 12 (Node 22) one that also gives back the young generation's grown
 * space and V8's pooled pages (what V8 does itself under memory pressure): the tunnel client on Node 26, 5 s
 * after a 1 GB download, 84-86 MB instead of 104-108; a regular full collection left it at 107. V8 11 (Node
 * 20) reads no options (any object asks for a minor collection): a plain gc() there.
 */
const QUIET_OPTIONS =
  Number(process.versions.v8.split('.')[0]) >= 12
    ? ({ type: 'major', execution: 'sync', flavor: 'last-resort' } as const)
    : undefined;

export class ReadCollector {
  private readonly everyBytes: number;
  private sinceLast = 0;
  private sentSinceLast = 0;
  private readonly quiet: IdleTrim;

  constructor(everyBytes = READ_GC_BYTES, quietMs = QUIET_MS) {
    this.everyBytes = everyBytes;
    this.quiet = new IdleTrim(quietMs, () => gc()?.(QUIET_OPTIONS));
  }

  /** `bytes` of fresh socket reads were consumed: a minor collection every `everyBytes`. */
  read(bytes: number): void {
    this.sinceLast += bytes;
    if (this.sinceLast < this.everyBytes) return;
    this.sinceLast = 0;
    const collect = gc();
    if (!collect) return;
    collect({ type: 'minor' });
    this.transferred();
  }

  /** `bytes` were sent from reused buffers: nothing to free now, but the transfer grew the heap. */
  sent(bytes: number): void {
    this.sentSinceLast += bytes;
    if (this.sentSinceLast < this.everyBytes) return;
    this.sentSinceLast = 0;
    this.transferred();
  }

  /** A transfer is going on: once it has been quiet for the quiet time, one full collection. */
  private transferred(): void {
    this.quiet.used();
    this.quiet.arm();
  }
}

const collector = new ReadCollector();

/** `bytes` of fresh socket reads were consumed: a minor collection every READ_GC_BYTES, a full one when quiet. */
export function countRead(bytes: number): void {
  collector.read(bytes);
}

/** `bytes` were sent from reused buffers (the tunnel client's link): a full collection when quiet. */
export function countSent(bytes: number): void {
  collector.sent(bytes);
}
