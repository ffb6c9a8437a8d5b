// What the inspector keeps: the last N exchanges with their headers and the first part of each body. Bodies
// are teed as they stream (copied up to the limit, never waited for), so capture adds no latency; the rest
// of a long body is only counted, and the exchange marked as cut.
import type { OutgoingHttpHeaders } from 'node:http';
import { ByteArena } from './arena.js';
import { pack, packedBodyBytes, packedId, unpack } from './packed.js';

export interface CapturedBody {
  /** Copies of the first chunks, up to the per-body limit. */
  parts: Buffer[];
  /** Bytes kept in parts. */
  kept: number;
  /** Bytes seen in all. */
  size: number;
}

export interface CapturedExchange {
  /** 16 hex digits, as ngrok's ids. */
  id: string;
  tunnel: string;
  /** The visitor's address (the last X-Forwarded-For entry the server added). */
  remoteAddr: string;
  start: Date;
  /** Until the response has ended (or failed), undefined. */
  durationMs: number | undefined;
  request: { method: string; path: string; headers: OutgoingHttpHeaders; body: CapturedBody };
  response: { status: number; headers: OutgoingHttpHeaders; body: CapturedBody } | undefined;
  /** The Upgrade protocol of a WebSocket (or other) upgrade. */
  upgrade: string | undefined;
  /** Why the exchange failed (target down, cancelled), if it did. */
  error: string | undefined;
  /** The exchange this one replays. */
  replayOf: string | undefined;
}

export type CaptureEvent =
  { kind: 'new' | 'update'; exchange: CapturedExchange } | { kind: 'clear' } | { kind: 'evict'; id: string };

export interface CaptureLimits {
  /** Exchanges kept (-inspect-keep). */
  keep: number;
  /** Bytes kept per body. */
  bodyBytes: number;
  /** Bytes kept for all bodies together; the oldest exchanges go first. */
  totalBytes: number;
}

export const DEFAULT_LIMITS: CaptureLimits = {
  keep: 500,
  bodyBytes: 1024 * 1024,
  totalBytes: 64 * 1024 * 1024,
};

/** Records one exchange as it happens; every method is cheap and safe to call after the store dropped it. */
export interface Recorder {
  readonly id: string;
  requestData(chunk: Buffer): void;
  response(status: number, headers: OutgoingHttpHeaders): void;
  responseData(chunk: Buffer): void;
  upgraded(protocol: string, headers: OutgoingHttpHeaders): void;
  finish(error?: string): void;
}

export class CaptureStore {
  readonly limits: CaptureLimits;
  // The kept exchanges in a fixed ring, the exchange numbered `seq` in slot `seq % keep`: the live ones are
  // always the numbers oldest..seq, since they go oldest first. Not a Map: a Map that keeps hundreds of
  // entries and churns thousands a second replaces its table every few hundred insertions, and V8 keeps a
  // link from each replaced table to its successor (for live iterators). Once one table is in the old
  // generation, scavenges take it as a root until the next full collection, so every later table and every
  // exchange they held (with its headers, parsed answer, buffers) is promoted: ~3 KB per request, and a full
  // collection every few hundred milliseconds under load. The ring is one array that lives as long as the
  // store; a slot is overwritten or cleared when its exchange goes, so nothing dead points into the young
  // generation. An id carries its number, so lookups need no index either. A finished exchange is kept
  // packed (packed.ts), a running one as the object its recorder fills.
  private readonly slots: (CapturedExchange | Buffer | undefined)[];
  private oldest = 1;
  private seq = 0;
  private keptBytes = 0;
  private readonly arena = new ByteArena();
  private readonly listeners = new Set<(event: CaptureEvent) => void>();

  constructor(limits: Partial<CaptureLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.slots = new Array<CapturedExchange | Buffer | undefined>(Math.max(1, this.limits.keep)).fill(
      undefined,
    );
  }

  /** Newest first. */
  list(): CapturedExchange[] {
    const out: CapturedExchange[] = [];
    for (let n = this.seq; n >= this.oldest; n--) out.push(exchangeOf(this.slots[n % this.slots.length]!));
    return out;
  }

  get(id: string): CapturedExchange | undefined {
    const n = parseInt(id.slice(8), 16);
    if (!(n >= this.oldest && n <= this.seq)) return undefined;
    const kept = this.slots[n % this.slots.length];
    if (kept === undefined || idOf(kept) !== id) return undefined;
    return exchangeOf(kept);
  }

  get size(): number {
    return this.seq - this.oldest + 1;
  }

  clear(): void {
    for (const kept of this.slots) if (Buffer.isBuffer(kept)) this.arena.free(kept);
    this.slots.fill(undefined);
    this.oldest = this.seq + 1;
    this.keptBytes = 0;
    this.emit({ kind: 'clear' });
  }

  subscribe(listener: (event: CaptureEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  begin(init: {
    tunnel: string;
    remoteAddr: string;
    method: string;
    path: string;
    headers: OutgoingHttpHeaders;
    replayOf?: string;
  }): Recorder {
    // Room for this one first, so that its slot is free.
    this.evict(this.slots.length - 1);
    const n = ++this.seq;
    const start = new Date();
    const id =
      Math.floor(start.getTime() / 1000)
        .toString(16)
        .padStart(8, '0') + n.toString(16).padStart(8, '0');
    const entry: CapturedExchange = {
      id,
      tunnel: init.tunnel,
      remoteAddr: init.remoteAddr,
      start,
      durationMs: undefined,
      request: { method: init.method, path: init.path, headers: init.headers, body: emptyBody() },
      response: undefined,
      upgrade: undefined,
      error: undefined,
      replayOf: init.replayOf,
    };
    this.slots[n % this.slots.length] = entry;
    this.emit({ kind: 'new', exchange: entry });
    const began = performance.now();
    let finished = false;
    return {
      id,
      requestData: (chunk) => this.keep(n, entry, entry.request.body, chunk),
      response: (status, headers) => {
        entry.response = { status, headers, body: emptyBody() };
        this.emit({ kind: 'update', exchange: entry });
      },
      responseData: (chunk) => {
        if (entry.response) this.keep(n, entry, entry.response.body, chunk);
      },
      upgraded: (protocol, headers) => {
        entry.upgrade = protocol;
        entry.response = { status: 101, headers, body: emptyBody() };
        this.emit({ kind: 'update', exchange: entry });
      },
      finish: (error) => {
        if (finished) return;
        finished = true;
        entry.durationMs = performance.now() - began;
        entry.error = error;
        this.evict(this.slots.length);
        if (!this.kept(n, entry)) return;
        this.emit({ kind: 'update', exchange: entry });
        this.slots[n % this.slots.length] = pack(entry, this.arena);
      },
    };
  }

  /** The exchange numbered n is still in its slot. */
  private kept(n: number, entry: CapturedExchange): boolean {
    return this.slots[n % this.slots.length] === entry;
  }

  private keep(n: number, entry: CapturedExchange, body: CapturedBody, chunk: Buffer): void {
    body.size += chunk.length;
    const room = this.limits.bodyBytes - body.kept;
    // Once evicted (a long exchange outlived its place), nothing more is kept for it.
    if (room <= 0 || !this.kept(n, entry)) return;
    // A copy: the chunk may be a view into a much larger buffer (a whole WebSocket message) it would pin.
    const part = Buffer.from(chunk.subarray(0, room));
    body.parts.push(part);
    body.kept += part.length;
    this.keptBytes += part.length;
  }

  /** Drops the oldest exchanges beyond `count` or beyond the byte budget. */
  private evict(count: number): void {
    while (this.size > 0 && (this.size > count || this.keptBytes > this.limits.totalBytes)) {
      const slot = this.oldest++ % this.slots.length;
      const kept = this.slots[slot]!;
      this.slots[slot] = undefined;
      const id = idOf(kept);
      if (Buffer.isBuffer(kept)) {
        this.keptBytes -= packedBodyBytes(kept);
        this.arena.free(kept);
      } else {
        this.keptBytes -= kept.request.body.kept + (kept.response?.body.kept ?? 0);
      }
      this.emit({ kind: 'evict', id });
    }
  }

  private emit(event: CaptureEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

function idOf(kept: CapturedExchange | Buffer): string {
  return Buffer.isBuffer(kept) ? packedId(kept) : kept.id;
}

function exchangeOf(kept: CapturedExchange | Buffer): CapturedExchange {
  return Buffer.isBuffer(kept) ? unpack(kept) : kept;
}

function emptyBody(): CapturedBody {
  return { parts: [], kept: 0, size: 0 };
}

/** The kept bytes of a body as one buffer. */
export function bodyBytes(body: CapturedBody): Buffer {
  return body.parts.length === 1 ? body.parts[0] : Buffer.concat(body.parts, body.kept);
}

/** The body was longer than what was kept. */
export function isCut(body: CapturedBody): boolean {
  return body.size > body.kept;
}
