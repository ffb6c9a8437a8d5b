// Streams multiplexed over one link (tunnel protocol 3): the public server opens a stream per visitor request
// or TCP connection, the tunnel client answers it. Frames written in one turn of the event loop leave in one
// flush (one WebSocket message, one system call). Flow control: a stream's sender may have at most
// STREAM_WINDOW bytes unconsumed at the receiver, and all streams of a link together LINK_WINDOW (CREDIT
// frames on the stream, and on stream 0 for the link, give them back), so a receiver never holds more than
// LINK_WINDOW for slow readers, and always reads on (control frames and pings pass stalled streams); a sender
// whose link has more than LINK_HIGH_WATER bytes waiting for the OS waits before sending more data.
import {
  CONTROL,
  CREDIT,
  DATA,
  FrameReader,
  frameHeader,
  LAST_TYPE,
  OPEN,
  ProtocolError,
  REPLY,
  splitHead,
} from './frames.js';
import type { MuxStream } from './mux-stream.js';
import { StreamTable } from './mux-table.js';

/** Body bytes of all streams of a link that may be unconsumed at the receiver (HTTP/2's connection window). */
export const LINK_WINDOW = 64 * 1024 * 1024;
/** Bytes waiting to be written to the OS beyond which senders of data wait for the link to drain. */
export const LINK_HIGH_WATER = 1024 * 1024;
/** Buffers of a flush below this size are joined into one write; bigger ones go alone, uncopied. */
const ALONE_BYTES = 16 * 1024;
const MAX_JOINED = 256 * 1024;

/** What a mux writes to and reads from (a WebSocket). */
export interface Link {
  /**
   * Writes the chunks in order, in as few system calls as it can; `written` (if given) is called once the
   * OS has taken all of them (not when the link failed).
   */
  write(chunks: Buffer[], written?: () => void): void;
  /** Bytes written and not yet handed to the OS. */
  readonly pendingBytes: number;
}

/** Whatever a stream id's frames go to: a stream of this process, or a stream forwarded to another link. */
export interface Endpoint {
  frame(type: number, flags: number, payload: Buffer): void;
  /** The link is gone. */
  lost(reason: string): void;
}

export class Mux {
  private readonly streams = new StreamTable<Endpoint>();
  private readonly reader: FrameReader;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Given back once the queued frames are written: buffers of a pool that the frames carry. */
  private queuedReleases: (() => void)[] = [];
  private flushing: NodeJS.Immediate | undefined;
  private nextId = 1;
  private lastPeerId = 0;
  /** Body bytes this side may still send on the link (the peer's LINK_WINDOW, less what it holds). */
  private sendCredit = LINK_WINDOW;
  /** Body bytes the peer may still send us. */
  private recvAllowed = LINK_WINDOW;
  /** Consumed and not yet credited back to the peer. */
  private unacked = 0;
  private readonly blocked = new Set<MuxStream>();
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
    this.wake();
  }

  /** Streams waiting for the link (its buffer, or its window) try again. */
  private wake(): void {
    if (this.blocked.size > 0) {
      const waiting = [...this.blocked];
      this.blocked.clear();
      for (const s of waiting) s.unblocked();
    }
  }

  /** The link is gone: every stream learns it, and nothing is sent any more. */
  lost(reason: string): void {
    if (this.closed) return;
    this.closedReason = reason;
    if (this.flushing) clearImmediate(this.flushing);
    this.queue = [];
    this.queuedBytes = 0;
    this.queuedReleases = [];
    this.blocked.clear();
    const endpoints = this.streams.list();
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

  /**
   * Queues a frame; everything queued in this turn of the event loop is written together. `release` is
   * called once the OS has the frame (a pooled buffer in the payload may then be reused); never if the link
   * fails first.
   */
  send(type: number, flags: number, id: number, payload?: Buffer | Buffer[], release?: () => void): void {
    if (this.closed) return;
    if (release) this.queuedReleases.push(release);
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
    const releases = this.queuedReleases;
    this.queue = [];
    this.queuedBytes = 0;
    this.queuedReleases = [];
    if (this.closed || chunks.length === 0) return;
    this.link.write(joinSmall(chunks), releases.length > 0 ? () => releaseAll(releases) : undefined);
    this.drained();
  };

  /** Body bytes the link's window lets a stream send now. */
  get linkCredit(): number {
    return this.sendCredit;
  }

  /** A stream sent `n` body bytes. */
  spent(n: number): void {
    this.sendCredit -= n;
  }

  /** `n` body bytes arrived for a stream of this process; more than the link's window is a broken peer. */
  hold(n: number): void {
    if (n > this.recvAllowed) throw new ProtocolError('the peer sent beyond the link window');
    this.recvAllowed -= n;
  }

  /** Held bytes consumed (or dropped): credited back to the peer a quarter window at a time. */
  release(n: number): void {
    this.unacked += n;
    if (this.unacked < LINK_WINDOW / 4 || this.closed) return;
    const credit = Buffer.allocUnsafe(4);
    credit.writeUInt32BE(this.unacked, 0);
    this.send(CREDIT, 0, 0, credit);
    this.recvAllowed += this.unacked;
    this.unacked = 0;
  }

  private credited(payload: Buffer): void {
    if (payload.length !== 4) throw new ProtocolError(`CREDIT of ${payload.length} bytes`);
    this.sendCredit += payload.readUInt32BE(0);
    if (this.sendCredit > LINK_WINDOW) throw new ProtocolError('the peer credited beyond the link window');
    this.wake();
  }

  waitForDrain(stream: MuxStream): void {
    this.blocked.add(stream);
  }

  /** Throws ProtocolError for a frame no correct peer sends; the link is then cut. */
  private dispatch(type: number, flags: number, id: number, payload: Buffer): void {
    if (type === 0 || type > LAST_TYPE) throw new ProtocolError(`unknown frame type ${type}`);
    if (id === 0) {
      if (type === CREDIT) this.credited(payload);
      else if (type === CONTROL) this.onControl?.(payload);
      else throw new ProtocolError(`frame type ${type} on stream 0`);
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
    // A frame for a stream that is over here (a RESET crossed it on the way) is dropped, its body bytes
    // credited back to the link's window; one for a stream that was never opened is a broken peer.
    if (id >= this.nextId && id > this.lastPeerId) {
      throw new ProtocolError(`frame type ${type} for stream ${id}, which was never opened`);
    }
    const body = type === DATA ? payload.length : type === REPLY ? splitHead(payload).body.length : 0;
    if (body > 0) {
      this.hold(body);
      this.release(body);
    }
  }
}

function releaseAll(releases: (() => void)[]): void {
  for (const release of releases) release();
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
