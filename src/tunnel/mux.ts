// Streams multiplexed over one link (tunnel protocol 3): the public server opens a stream per visitor request
// or TCP connection, the tunnel client answers it. Frames written in one turn of the event loop leave in one
// flush (one WebSocket message, one system call). Flow control: a stream's sender may have at most
// STREAM_WINDOW bytes unconsumed at the receiver (CREDIT frames give them back); a receiver that holds more
// than RECEIVE_CAP unconsumed bytes of all its streams stops reading the link; a sender whose link has more
// than LINK_HIGH_WATER bytes waiting for the OS waits before sending more data.
import { CONTROL, FrameReader, frameHeader, LAST_TYPE, OPEN, ProtocolError } from './frames.js';
import type { MuxStream } from './mux-stream.js';

/** Unconsumed bytes of all streams beyond which a receiver stops reading its link until they drain. */
export const RECEIVE_CAP = 32 * 1024 * 1024;
/** Bytes waiting to be written to the OS beyond which senders of data wait for the link to drain. */
export const LINK_HIGH_WATER = 1024 * 1024;
/** Buffers of a flush below this size are joined into one write; bigger ones go alone, uncopied. */
const ALONE_BYTES = 16 * 1024;
const MAX_JOINED = 256 * 1024;

/** What a mux writes to and reads from (a WebSocket). */
export interface Link {
  /** Writes the chunks in order, in as few system calls as it can. */
  write(chunks: Buffer[]): void;
  /** Bytes written and not yet handed to the OS. */
  readonly pendingBytes: number;
  pause(): void;
  resume(): void;
}

/** Whatever a stream id's frames go to: a stream of this process, or a stream forwarded to another link. */
export interface Endpoint {
  frame(type: number, flags: number, payload: Buffer): void;
  /** The link is gone. */
  lost(reason: string): void;
}

export class Mux {
  private readonly streams = new Map<number, Endpoint>();
  private readonly reader: FrameReader;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushing: NodeJS.Immediate | undefined;
  private nextId = 1;
  private lastPeerId = 0;
  /** Bytes received for this process's streams and not yet consumed. */
  private held = 0;
  /** Reasons besides `held` to leave the link unread (a congested link frames are forwarded to). */
  private holds = 0;
  private paused = false;
  private readonly blocked = new Set<MuxStream>();
  private readonly drainListeners = new Set<() => void>();
  private closedReason: string | undefined;
  /** A new stream from the peer (the acceptor side). Unset: OPEN frames are refused. */
  onOpen: ((id: number, flags: number, payload: Buffer) => void) | undefined;
  /** CONTROL frames (stream 0). */
  onControl: ((payload: Buffer) => void) | undefined;

  /**
   * `fail` is told about a peer that broke the protocol (the reason says how); it should close the link.
   * Every stream of the link is lost by then.
   */
  constructor(
    private readonly link: Link,
    private readonly fail: (reason: string) => void,
  ) {
    this.reader = new FrameReader((type, flags, id, payload) => this.dispatch(type, flags, id, payload));
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Too much waits for the OS: data senders hold back until it drains. */
  get congested(): boolean {
    return this.queuedBytes + this.link.pendingBytes > LINK_HIGH_WATER;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Bytes from the link. */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // Nothing more is read from a peer that broke the protocol: its streams are over now.
      const reason = `protocol error: ${err.message}`;
      this.lost(reason);
      this.fail(reason);
    }
  }

  /** The link wrote everything it had: senders waiting for it may go on. */
  drained(): void {
    if (this.congested) return;
    if (this.blocked.size > 0) {
      const waiting = [...this.blocked];
      this.blocked.clear();
      for (const s of waiting) s.unblocked();
    }
    for (const listener of this.drainListeners) listener();
  }

  onDrain(listener: () => void): () => void {
    this.drainListeners.add(listener);
    return () => this.drainListeners.delete(listener);
  }

  /** The link is gone: every stream learns it, and nothing is sent any more. */
  lost(reason: string): void {
    if (this.closed) return;
    this.closedReason = reason;
    if (this.flushing) clearImmediate(this.flushing);
    this.queue = [];
    this.queuedBytes = 0;
    this.blocked.clear();
    const endpoints = [...this.streams.values()];
    this.streams.clear();
    for (const e of endpoints) e.lost(reason);
  }

  /** A new stream id of ours (the opener side: odd numbers) for `endpoint`. */
  allocate(endpoint: Endpoint): number {
    const id = this.nextId;
    this.nextId += 2;
    this.streams.set(id, endpoint);
    return id;
  }

  /** Routes the frames of a stream the peer opened to `endpoint`. */
  attach(id: number, endpoint: Endpoint): void {
    this.streams.set(id, endpoint);
  }

  forget(id: number): void {
    this.streams.delete(id);
  }

  /** Queues a frame; everything queued in this turn of the event loop is written together. */
  send(type: number, flags: number, id: number, payload?: Buffer | Buffer[]): void {
    if (this.closed) return;
    let length = 0;
    if (Array.isArray(payload)) for (const p of payload) length += p.length;
    else if (payload) length = payload.length;
    this.queue.push(frameHeader(type, flags, id, length));
    if (Array.isArray(payload)) this.queue.push(...payload);
    else if (payload && payload.length > 0) this.queue.push(payload);
    this.queuedBytes += length + 10;
    this.flushing ??= setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushing = undefined;
    const chunks = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.closed || chunks.length === 0) return;
    this.link.write(joinSmall(chunks));
    this.drained();
  };

  /** Received bytes for a stream of this process: held until consumed. */
  hold(n: number): void {
    this.held += n;
    this.updatePause();
  }

  /** Held bytes consumed (or dropped). */
  release(n: number): void {
    this.held -= n;
    if (this.paused) this.updatePause();
  }

  /** Leave the link unread until unblock() (a forwarding target is congested). */
  block(): void {
    this.holds++;
    this.updatePause();
  }

  unblock(): void {
    this.holds--;
    this.updatePause();
  }

  private updatePause(): void {
    const pause = this.holds > 0 || this.held > RECEIVE_CAP;
    if (pause === this.paused || this.closed) return;
    // Resume only once half the cap is free again, not at every consumed chunk.
    if (!pause && this.held > RECEIVE_CAP / 2) return;
    this.paused = pause;
    if (pause) this.link.pause();
    else this.link.resume();
  }

  waitForDrain(stream: MuxStream): void {
    this.blocked.add(stream);
  }

  /** Throws ProtocolError for a frame no correct peer sends; the link is then cut. */
  private dispatch(type: number, flags: number, id: number, payload: Buffer): void {
    if (type === 0 || type > LAST_TYPE) throw new ProtocolError(`unknown frame type ${type}`);
    if (id === 0) {
      if (type !== CONTROL) throw new ProtocolError(`frame type ${type} on stream 0`);
      this.onControl?.(payload);
      return;
    }
    if (type === CONTROL) throw new ProtocolError(`CONTROL frame on stream ${id}`);
    const endpoint = this.streams.get(id);
    if (endpoint) {
      endpoint.frame(type, flags, payload);
      return;
    }
    if (type === OPEN) {
      // Stream ids only grow: an OPEN reusing one is a broken peer.
      if (!this.onOpen || id <= this.lastPeerId) throw new ProtocolError(`unexpected OPEN of stream ${id}`);
      this.lastPeerId = id;
      this.onOpen(id, flags, payload);
      return;
    }
    // A frame for a stream that is over here (a RESET crossed it on the way) is dropped; one for a stream
    // that was never opened is a broken peer.
    if (id >= this.nextId && id > this.lastPeerId) {
      throw new ProtocolError(`frame type ${type} for stream ${id}, which was never opened`);
    }
  }
}

/** Consecutive small buffers joined (fewer, larger writes); a big one alone, without a copy. */
function joinSmall(chunks: Buffer[]): Buffer[] {
  if (chunks.length === 1) return chunks;
  const out: Buffer[] = [];
  let run: Buffer[] = [];
  let runBytes = 0;
  const close = () => {
    if (run.length > 0) out.push(run.length === 1 ? run[0] : Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const c of chunks) {
    if (c.length >= ALONE_BYTES) {
      close();
      out.push(c);
      continue;
    }
    if (runBytes + c.length > MAX_JOINED) close();
    run.push(c);
    runBytes += c.length;
  }
  close();
  return out;
}
