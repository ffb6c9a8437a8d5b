// The tunnel's frames (protocol 3). Both ends exchange a byte stream of frames: a 10-byte header (type, flags,
// stream id, payload length) and the payload. The WebSocket's messages are only chunks of that stream (a flush
// of many frames is one message). Stream ids are chosen by the side that opens streams (the public server).
export const FRAME_HEADER_BYTES = 10;

/** Frame types. */
export const OPEN = 1; // a request: head (and the start of its body); opener -> acceptor
export const REPLY = 2; // its response head (and the start of its body); acceptor -> opener
export const DATA = 3; // body bytes, either way
export const RESET = 4; // the stream is abandoned, either way; payload: a reason code (ASCII)
export const CREDIT = 5; // the receiver consumed this many more bytes (u32): the sender may send them
export const CONTROL = 6; // stream 0, server -> client: a JSON ControlMessage
/** The highest frame type; anything above is a peer that speaks something else, and is cut. */
export const LAST_TYPE = CONTROL;

/** Flag: the sender's side of the stream is complete with this frame. */
export const END = 1;

/** Longest payload a reader accepts; a peer sending more is broken (or hostile) and is cut. */
export const MAX_PAYLOAD = 16 * 1024 * 1024;

export function frameHeader(type: number, flags: number, stream: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h[0] = type;
  h[1] = flags;
  h.writeUInt32BE(stream, 2);
  h.writeUInt32BE(length, 6);
  return h;
}

/**
 * The payload of an OPEN or REPLY: the head's JSON length (u32), the JSON, then the first body bytes (as many
 * as the sender had at hand: the whole of a small body).
 */
export function headPayload(head: unknown, body: Buffer | undefined): Buffer[] {
  const json = Buffer.from(JSON.stringify(head));
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(json.length, 0);
  return body && body.length > 0 ? [prefix, json, body] : [prefix, json];
}

export class ProtocolError extends Error {}

/** Splits an OPEN or REPLY payload into its head (parsed JSON) and the body bytes behind it. */
export function splitHead(payload: Buffer): { head: unknown; body: Buffer } {
  if (payload.length < 4) throw new ProtocolError('head frame too short');
  const n = payload.readUInt32BE(0);
  if (4 + n > payload.length) throw new ProtocolError('head longer than its frame');
  let head: unknown;
  try {
    head = JSON.parse(payload.toString('utf8', 4, 4 + n));
  } catch {
    throw new ProtocolError('head is not JSON');
  }
  return { head, body: payload.subarray(4 + n) };
}

export type FrameHandler = (type: number, flags: number, stream: number, payload: Buffer) => void;

const NO_PAYLOAD = Buffer.alloc(0);

/**
 * Cuts a byte stream into frames, without copying payloads: a DATA frame whose payload arrives in several
 * chunks is handed on in as many pieces (views into the chunks), each a DATA frame of its own, END only on the
 * last one (a stream's window counts bytes, not frames). Other frames stay whole: one within a chunk is a
 * view into it; one spread over chunks (rare: heads, credits, control messages) is joined.
 */
export class FrameReader {
  /** The header being read when a chunk ended inside it. */
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  /** Reading a payload (else a header), of this frame, with this many bytes still to come. */
  private inPayload = false;
  private type = 0;
  private flags = 0;
  private stream = 0;
  private left = 0;
  /** The pieces of a whole (non-DATA) frame spread over chunks. */
  private parts: Buffer[] = [];

  constructor(private readonly onFrame: FrameHandler) {}

  /** Throws ProtocolError on a frame longer than MAX_PAYLOAD. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let at = 0;
    while (at < n) {
      if (!this.inPayload) {
        let length: number;
        if (this.headerHave === 0 && n - at >= FRAME_HEADER_BYTES) {
          length = checkedLength(chunk, at);
          this.type = chunk[at];
          this.flags = chunk[at + 1];
          this.stream = chunk.readUInt32BE(at + 2);
          at += FRAME_HEADER_BYTES;
        } else {
          const take = Math.min(FRAME_HEADER_BYTES - this.headerHave, n - at);
          chunk.copy(this.header, this.headerHave, at, at + take);
          this.headerHave += take;
          at += take;
          if (this.headerHave < FRAME_HEADER_BYTES) return;
          this.headerHave = 0;
          const h = this.header;
          length = checkedLength(h, 0);
          this.type = h[0];
          this.flags = h[1];
          this.stream = h.readUInt32BE(2);
        }
        if (length === 0) {
          this.onFrame(this.type, this.flags, this.stream, NO_PAYLOAD);
          continue;
        }
        if (n - at >= length) {
          // The whole payload is here (the usual case): a view.
          at += length;
          this.onFrame(this.type, this.flags, this.stream, chunk.subarray(at - length, at));
          continue;
        }
        this.inPayload = true;
        this.left = length;
        continue;
      }
      const take = Math.min(this.left, n - at);
      const piece = chunk.subarray(at, at + take);
      at += take;
      this.left -= take;
      if (this.left === 0) this.inPayload = false;
      if (this.type === DATA) {
        this.onFrame(DATA, this.left === 0 ? this.flags : this.flags & ~END, this.stream, piece);
        continue;
      }
      this.parts.push(piece);
      if (this.left > 0) continue;
      const whole = Buffer.concat(this.parts);
      this.parts = [];
      this.onFrame(this.type, this.flags, this.stream, whole);
    }
  }
}

function checkedLength(buf: Buffer, at: number): number {
  const length = buf.readUInt32BE(at + 6);
  if (length > MAX_PAYLOAD) throw new ProtocolError('frame too long');
  return length;
}
