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

/**
 * Cuts a byte stream into frames. A frame may span chunks; a payload that arrives alone right after its
 * header (how the writer sends bulk DATA) is passed on without a copy.
 */
export class FrameReader {
  /** A header that ended the last chunk, its payload not yet seen. */
  private header: Buffer | undefined;
  /** The pieces of a frame spread over several chunks. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** The whole length of that frame, once its header is complete (else 0). */
  private need = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  /** Throws ProtocolError on a frame longer than MAX_PAYLOAD. */
  push(chunk: Buffer): void {
    const header = this.header;
    if (header) {
      this.header = undefined;
      const length = header.readUInt32BE(6);
      if (chunk.length >= length) {
        this.onFrame(header[0], header[1], header.readUInt32BE(2), chunk.subarray(0, length));
        if (chunk.length > length) this.parse(chunk.subarray(length));
        return;
      }
      this.parts = [header];
      this.partsBytes = header.length;
      this.need = FRAME_HEADER_BYTES + length;
    }
    if (this.partsBytes > 0) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      if (this.need === 0 && this.partsBytes >= FRAME_HEADER_BYTES) {
        this.need = FRAME_HEADER_BYTES + checkedLength(Buffer.concat(this.parts), 0);
      }
      if (this.need === 0 || this.partsBytes < this.need) return;
      chunk = Buffer.concat(this.parts, this.partsBytes);
      this.parts = [];
      this.partsBytes = 0;
      this.need = 0;
    }
    this.parse(chunk);
  }

  private parse(chunk: Buffer): void {
    let at = 0;
    while (chunk.length - at >= FRAME_HEADER_BYTES) {
      const end = at + FRAME_HEADER_BYTES + checkedLength(chunk, at);
      if (end > chunk.length) break;
      this.onFrame(
        chunk[at],
        chunk[at + 1],
        chunk.readUInt32BE(at + 2),
        chunk.subarray(at + FRAME_HEADER_BYTES, end),
      );
      at = end;
    }
    if (at === chunk.length) return;
    const tail = chunk.subarray(at);
    if (tail.length === FRAME_HEADER_BYTES) {
      this.header = tail;
      return;
    }
    this.parts = [tail];
    this.partsBytes = tail.length;
    this.need = tail.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + checkedLength(tail, 0) : 0;
  }
}

function checkedLength(buf: Buffer, at: number): number {
  const length = buf.readUInt32BE(at + 6);
  if (length > MAX_PAYLOAD) throw new ProtocolError('frame too long');
  return length;
}
