// One stream of a tunnel mux (see mux.ts), as this process sees it: its frames, flow control both ways, and
// where its incoming body goes (a StreamSink: a duplex, a response being written, a request to the target).
import { CREDIT, DATA, END, OPEN, ProtocolError, REPLY, RESET, headPayload, splitHead } from './frames.js';
import type { Endpoint, Mux } from './mux.js';

/** Bytes a stream's sender may have unconsumed at the receiver (bandwidth x delay: 100 MB/s at 40 ms). */
export const STREAM_WINDOW = 4 * 1024 * 1024;
/** The longest DATA frame a sender makes (large writes are split: streams take turns). */
const MAX_DATA = 256 * 1024;

/** An error without a stack trace: resets and lost links are expected events, not bugs. */
export function streamError(message: string, code: string): Error & { code: string } {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const err = Object.assign(new Error(message), { code });
  Error.stackTraceLimit = limit;
  return err;
}

/** Where a stream's incoming body and events go. */
export interface StreamSink {
  /** Body bytes (possibly none, with `end`). The sink calls stream.consumed() as it gets rid of them. */
  deliver(chunk: Buffer, end: boolean): void;
  /** The stream was abandoned (by the peer, or the link was lost). */
  abandoned(err: Error & { code: string }): void;
  /** A write() that returned false may be followed by more. */
  resumeWriting(): void;
}

/** One stream of this process: flow control both ways, and the frames of its side. */
export class MuxStream implements Endpoint {
  readonly id: number;
  sink: StreamSink | undefined;
  /** The response head (parsed JSON, to be checked), on the opener side: the first frame the acceptor sends. */
  onReply: ((head: unknown, body: Buffer, end: boolean) => void) | undefined;
  /** Called once, when the stream is over both ways, reset, or lost. */
  onClose: (() => void) | undefined;
  /** Counts frames either way: an idle sweep compares it between two looks. */
  activity = 0;
  private activityAtLook = 0;
  private quietLooks = 0;
  private sendCredit = STREAM_WINDOW;
  /** Bytes the peer may still send us. */
  private recvAllowed = STREAM_WINDOW;
  /** Consumed and not yet credited back. */
  private unacked = 0;
  /** Received and not yet consumed (counted in the mux's held bytes). */
  private unconsumed = 0;
  private pending: Buffer[] = [];
  /** What to call once each pending buffer has been written (see write()). */
  private pendingReleases: ((() => void) | undefined)[] = [];
  private endPending = false;
  private wantsWritable = false;
  private sentEnd = false;
  private gotEnd = false;
  private replied = false;
  private over = false;

  constructor(
    private readonly mux: Mux,
    id?: number,
  ) {
    if (id === undefined) this.id = mux.allocate(this);
    else {
      this.id = id;
      mux.attach(id, this);
    }
  }

  get done(): boolean {
    return this.over;
  }

  /** Throws ProtocolError for a frame no correct peer sends (the mux cuts the link). */
  frame(type: number, flags: number, payload: Buffer): void {
    this.activity++;
    const end = (flags & END) !== 0;
    if (type === DATA) {
      if (this.gotEnd) throw new ProtocolError(`DATA on stream ${this.id} after its end`);
      this.take(payload.length);
      if (end) this.gotEnd = true;
      this.deliver(payload, end);
    } else if (type === REPLY) {
      if (!this.onReply || this.replied) throw new ProtocolError(`unexpected REPLY on stream ${this.id}`);
      this.replied = true;
      const { head, body } = splitHead(payload);
      this.take(body.length);
      if (end) this.gotEnd = true;
      this.onReply(head, body, end);
    } else if (type === CREDIT) {
      if (payload.length !== 4) throw new ProtocolError(`CREDIT of ${payload.length} bytes`);
      this.sendCredit += payload.readUInt32BE(0);
      this.unblocked();
    } else if (type === OPEN) {
      throw new ProtocolError(`OPEN of stream ${this.id}, which is open`);
    } else if (type === RESET) {
      this.finish();
      this.sink?.abandoned(streamError(`stream reset by the peer (${payload.toString('latin1')})`, 'reset'));
      return;
    }
    this.maybeOver();
  }

  lost(reason: string): void {
    if (this.over) return;
    this.finish();
    this.sink?.abandoned(streamError(reason, 'lost'));
  }

  /** Accounts for `n` incoming bytes; a peer that sends more than the window allows is broken. */
  private take(n: number): void {
    if (n > this.recvAllowed) throw new ProtocolError(`stream ${this.id} sent beyond its window`);
    this.mux.hold(n);
    this.recvAllowed -= n;
    this.unconsumed += n;
  }

  private deliver(chunk: Buffer, end: boolean): void {
    if (this.sink) this.sink.deliver(chunk, end);
    else this.consumed(chunk.length); // nobody reads: dropped, as a resumed body would be
  }

  /** `n` received bytes were consumed: they count against the window no more. */
  consumed(n: number): void {
    n = Math.min(n, this.unconsumed);
    if (n <= 0) return;
    this.unconsumed -= n;
    this.mux.release(n);
    if (this.gotEnd || this.over) return;
    this.unacked += n;
    if (this.unacked >= STREAM_WINDOW / 4) {
      const credit = Buffer.allocUnsafe(4);
      credit.writeUInt32BE(this.unacked, 0);
      this.mux.send(CREDIT, 0, this.id, credit);
      this.recvAllowed += this.unacked;
      this.unacked = 0;
    }
  }

  /**
   * Acceptor side: the OPEN frame came, with `bytes` of body in it, and END when that is the whole request.
   * Those bytes count against the window like DATA.
   */
  accepted(bytes: number, end: boolean): void {
    this.activity++;
    this.take(bytes);
    if (end) this.gotEnd = true;
  }

  /** Opener side: the request head and the start of its body. */
  open(head: unknown, end: boolean): void {
    this.activity++;
    if (end) this.sentEnd = true;
    this.mux.send(OPEN, end ? END : 0, this.id, headPayload(head, undefined));
  }

  /**
   * Acceptor side: the response head (wire form), with the whole body (`end`) or its start. A body the
   * windows have no room for follows in DATA frames as they allow. `release` as for write().
   */
  reply(head: unknown, body: Buffer | undefined, end: boolean, release?: () => void): void {
    if (this.over) return;
    this.activity++;
    const n = body?.length ?? 0;
    if (n > 0 && n > Math.min(this.sendCredit, this.mux.linkCredit)) {
      this.mux.send(REPLY, 0, this.id, headPayload(head, undefined));
      this.write(body!, release);
      if (end) this.end();
      return;
    }
    this.sendCredit -= n;
    this.mux.spent(n);
    if (end) this.sentEnd = true;
    this.mux.send(REPLY, end ? END : 0, this.id, headPayload(head, body), release);
    this.maybeOver();
  }

  /**
   * Sends body bytes as the window allows; false: wait for the sink's writable() before writing more.
   * `release` is called once the OS has all of `chunk` (a pooled buffer may then be reused); never if the
   * stream or the link ends first.
   */
  write(chunk: Buffer, release?: () => void): boolean {
    if (this.over || this.sentEnd || this.endPending) return true;
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingReleases.push(release);
    } else release?.();
    if (this.pump()) return true;
    this.wantsWritable = true;
    return false;
  }

  /** Ends our side once everything written has been sent. */
  end(): void {
    if (this.over || this.sentEnd || this.endPending) return;
    this.endPending = true;
    this.pump();
  }

  /** Abandons the stream: the peer stops too. */
  reset(reason = 'cancel'): void {
    if (this.over) return;
    this.mux.send(RESET, 0, this.id, Buffer.from(reason, 'latin1'));
    this.finish();
  }

  /** Cancels the stream both here (the sink hears `err`) and at the peer. */
  abort(err: Error & { code: string }): void {
    if (this.over) return;
    this.reset(err.code);
    this.sink?.abandoned(err);
  }

  /**
   * One look of an idle sweep: how many looks in a row (this one included) found no frame either way since
   * the one before.
   */
  look(): number {
    if (this.activity !== this.activityAtLook) {
      this.activityAtLook = this.activity;
      this.quietLooks = 0;
    } else this.quietLooks++;
    return this.quietLooks;
  }

  /** Credit came, or the link drained. */
  unblocked(): void {
    if (this.pump() && this.wantsWritable) {
      this.wantsWritable = false;
      this.sink?.resumeWriting();
    }
  }

  /** Sends what the window and the link allow; true when nothing is left waiting. */
  private pump(): boolean {
    while (this.pending.length > 0) {
      if (this.over) return true;
      if (this.sendCredit <= 0 || this.mux.linkCredit <= 0 || this.mux.congested) {
        this.mux.waitForDrain(this);
        return false;
      }
      let chunk = this.pending[0];
      let release: (() => void) | undefined;
      const n = Math.min(chunk.length, this.sendCredit, this.mux.linkCredit, MAX_DATA);
      if (n < chunk.length) {
        this.pending[0] = chunk.subarray(n);
        chunk = chunk.subarray(0, n);
      } else {
        this.pending.shift();
        release = this.pendingReleases.shift();
      }
      this.sendCredit -= n;
      this.mux.spent(n);
      this.activity++;
      const last = this.endPending && this.pending.length === 0;
      this.mux.send(DATA, last ? END : 0, this.id, chunk, release);
      if (last) this.endSent();
    }
    if (this.endPending) {
      this.mux.send(DATA, END, this.id);
      this.endSent();
    }
    return true;
  }

  private endSent(): void {
    this.endPending = false;
    this.sentEnd = true;
    this.maybeOver();
  }

  private maybeOver(): void {
    if (this.sentEnd && this.gotEnd && !this.over) this.finish();
  }

  /** The stream is over for this process: forgotten by the mux; held bytes stay until released. */
  private finish(): void {
    this.over = true;
    this.pending = [];
    this.pendingReleases = [];
    this.endPending = false;
    this.mux.forget(this.id);
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
  }

  /** Gives back the bytes nobody will consume now (the reader is gone). */
  discard(): void {
    if (this.unconsumed > 0) {
      this.mux.release(this.unconsumed);
      this.unconsumed = 0;
    }
  }
}
