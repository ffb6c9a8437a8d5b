// A mux stream as a Node Duplex, for what needs one: bodies that stream (piped to a response, from a request),
// spliced upgrades and TCP connections (half-close both ways). Small exchanges skip it: their bodies cross in
// the head frames.
import { Duplex } from 'node:stream';
import type { MuxStream, StreamSink } from './mux-stream.js';

export class StreamDuplex extends Duplex implements StreamSink {
  private readonly stream: MuxStream;
  /** Told when the stream may be written again after stream.write() said no (a writer beside the duplex). */
  onWritable: (() => void) | undefined;
  private writeDone: ((err?: Error | null) => void) | undefined;
  /** Bytes pushed into the readable side; what left it since counts as consumed. */
  private pushed = 0;
  private accounted = 0;

  constructor(stream: MuxStream) {
    super({ allowHalfOpen: true });
    this.stream = stream;
    stream.sink = this;
  }

  deliver(chunk: Buffer, end: boolean): void {
    if (this.destroyed) {
      this.stream.consumed(chunk.length);
      return;
    }
    if (chunk.length > 0) {
      this.pushed += chunk.length;
      this.push(chunk);
      this.account();
    }
    if (end) this.push(null);
  }

  abandoned(err: Error & { code: string }): void {
    this.destroy(err);
  }

  resumeWriting(): void {
    const done = this.writeDone;
    this.writeDone = undefined;
    done?.();
    this.onWritable?.();
  }

  /** Bytes that left the readable buffer are credited back to the sender. */
  private account(): void {
    const consumed = this.pushed - this.readableLength - this.accounted;
    if (consumed > 0) {
      this.accounted += consumed;
      this.stream.consumed(consumed);
    }
  }

  override _read(): void {
    this.account();
  }

  // Node calls _read() before it takes a chunk out of the buffer, and not again while the last _read() has
  // had no push: what a read takes would go uncredited until the sender sends more, which it cannot.
  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.account();
    return chunk;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.stream.write(chunk)) done();
    else this.writeDone = done;
  }

  override _final(done: (err?: Error | null) => void): void {
    this.stream.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.stream.done) this.stream.reset(err ? 'error' : 'cancel');
    this.stream.discard();
    // A write waiting for credit is abandoned with the stream (its callback never comes).
    this.writeDone = undefined;
    done(err);
  }
}
