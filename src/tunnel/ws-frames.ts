// The server's side of RFC 6455 framing for a tunnel link: reading the client's (masked) frames without
// copying their payload, and the headers of the server's own (unmasked) frames. Only binary data is spoken
// and no extension is negotiated, so there is little to read: binary and continuation frames, whose payload
// is handed on in the pieces the socket delivered (unmasked in place: the socket's chunks are ours), and the
// control frames close, ping and pong.
import { createRequire } from 'node:module';
import { isUtf8 } from 'node:buffer';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Close codes (RFC 6455 §7.4.1). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_NO_STATUS = 1005;
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_TOO_BIG = 1009;

/** The longest payload of a control frame. */
const MAX_CONTROL = 125;
/** The longest frame header a client sends: 2 bytes, a 64-bit length, the mask. */
const MAX_HEADER = 14;

/** A client that broke the protocol: the close code and reason it is told before the connection ends. */
export class WsProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface WsFrameHandler {
  /** A piece of a binary message, unmasked: a view into the socket's chunk, valid for good. */
  data(piece: Buffer): void;
  /** A close frame's code (1005 when it had none) and reason. */
  close(code: number, reason: string): void;
  ping(payload: Buffer): void;
  pong(payload: Buffer): void;
}

type Unmask = (buf: Buffer, mask: Buffer) => void;

// ws's native helper (an optional dependency of ours and of ws); without it, a JavaScript loop a word at a time.
const nativeUnmask: Unmask | undefined = (() => {
  try {
    const mod = createRequire(import.meta.url)('bufferutil') as { unmask?: Unmask };
    return typeof mod.unmask === 'function' ? mod.unmask : undefined;
  } catch {
    return undefined;
  }
})();

/** Below this many bytes the call into native code costs more than the loop. */
const NATIVE_FROM = 64;

const word = new Uint32Array(1);
const wordBytes = new Uint8Array(word.buffer);

/** XORs `buf` with `mask` (4 bytes, starting at mask byte `phase`). */
export function unmask(buf: Buffer, mask: Buffer, phase: number, native = true): void {
  const n = buf.length;
  if (native && nativeUnmask && n >= NATIVE_FROM) {
    if (phase === 0) nativeUnmask(buf, mask);
    else nativeUnmask(buf, rotated(mask, phase));
    return;
  }
  let i = 0;
  // Byte by byte up to a 4-byte boundary of the underlying memory, then a word at a time.
  const lead = Math.min(n, (4 - (buf.byteOffset & 3)) & 3);
  for (; i < lead; i++) buf[i] ^= mask[(phase + i) & 3];
  const words = (n - i) >>> 2;
  if (words > 0) {
    for (let k = 0; k < 4; k++) wordBytes[k] = mask[(phase + i + k) & 3];
    const m = word[0];
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k = 0; k < words; k++) view[k] ^= m;
    i += words * 4;
  }
  for (; i < n; i++) buf[i] ^= mask[(phase + i) & 3];
}

const rotatedMask = Buffer.alloc(4);
function rotated(mask: Buffer, phase: number): Buffer {
  for (let k = 0; k < 4; k++) rotatedMask[k] = mask[(phase + k) & 3];
  return rotatedMask;
}

/** A client frame's header length, from its second byte: 2, the extended length, the mask. */
function headerBytes(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
}

/** Valid close codes a peer may send (RFC 6455 §7.4: 1004-1006 and 1015 never go on the wire). */
function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/**
 * Reads a client's frames, a state machine fed the socket's chunks. Throws WsProtocolError for anything a
 * correct client does not send; nothing may be pushed after that.
 */
export class WsFrameReader {
  /** The header being read (copied: at most 14 bytes per frame). */
  private readonly header = Buffer.alloc(MAX_HEADER);
  private headerHave = 0;
  private readonly mask = Buffer.alloc(4);
  private zeroMask = false;
  /** Reading a frame's payload (else its header). */
  private inPayload = false;
  private opcode = 0;
  /** Payload bytes of the current frame still to come, and how many came (the mask's phase). */
  private left = 0;
  private seen = 0;
  /** A binary message is under way: continuation frames belong to it. */
  private inMessage = false;
  /** A control frame's payload, gathered (it may span chunks). */
  private readonly control = Buffer.alloc(MAX_CONTROL);
  private stopped = false;

  constructor(
    private readonly on: WsFrameHandler,
    private readonly maxPayload: number,
  ) {}

  /** Nothing more is read (the connection is closing): the rest of a chunk is ignored too. */
  stop(): void {
    this.stopped = true;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let at = 0;
    while (at < n && !this.stopped) {
      if (!this.inPayload) {
        // Reads (part of) a header; an empty frame is done with it.
        at = this.readHeader(chunk, at);
        continue;
      }
      const take = Math.min(this.left, n - at);
      const piece = chunk.subarray(at, at + take);
      at += take;
      if (!this.zeroMask) unmask(piece, this.mask, this.seen & 3);
      if (this.opcode === OP_BINARY || this.opcode === OP_CONTINUATION) {
        this.seen += take;
        this.left -= take;
        if (this.left === 0) this.inPayload = false;
        this.on.data(piece);
        continue;
      }
      piece.copy(this.control, this.seen);
      this.seen += take;
      this.left -= take;
      if (this.left === 0) {
        this.inPayload = false;
        this.controlFrame(this.control.subarray(0, this.seen));
      }
    }
  }

  /** Takes header bytes from `chunk` at `at`; returns where it stopped. */
  private readHeader(chunk: Buffer, at: number): number {
    if (this.headerHave === 0 && chunk.length - at >= 2) {
      // The usual case: the whole header is in this chunk, read where it is.
      const need = headerBytes(chunk[at + 1]);
      if (chunk.length - at >= need) {
        this.checkStart(chunk[at], chunk[at + 1]);
        this.startFrame(chunk, at, need);
        return at + need;
      }
    }
    // A header cut by the end of a chunk: gathered in `header`.
    const h = this.header;
    if (this.headerHave < 2) {
      const take = Math.min(2 - this.headerHave, chunk.length - at);
      chunk.copy(h, this.headerHave, at, at + take);
      this.headerHave += take;
      at += take;
      if (this.headerHave < 2) return at;
      this.checkStart(h[0], h[1]);
    }
    const need = headerBytes(h[1]);
    const take = Math.min(need - this.headerHave, chunk.length - at);
    chunk.copy(h, this.headerHave, at, at + take);
    this.headerHave += take;
    at += take;
    if (this.headerHave < need) return at;
    this.headerHave = 0;
    this.startFrame(h, 0, need);
    return at;
  }

  /** The frame whose (checked) header of `need` bytes is at `h[at]` starts. */
  private startFrame(h: Buffer, at: number, need: number): void {
    const len7 = h[at + 1] & 0x7f;
    let length = len7;
    if (len7 === 126) length = h.readUInt16BE(at + 2);
    else if (len7 === 127) {
      // Anything with the high word set is far beyond any limit we run with.
      if (h.readUInt32BE(at + 2) !== 0) throw this.tooBig();
      length = h.readUInt32BE(at + 6);
    }
    if (length > this.maxPayload) throw this.tooBig();
    const m = at + need - 4;
    const mask = this.mask;
    mask[0] = h[m];
    mask[1] = h[m + 1];
    mask[2] = h[m + 2];
    mask[3] = h[m + 3];
    this.zeroMask = (mask[0] | mask[1] | mask[2] | mask[3]) === 0;
    this.left = length;
    this.seen = 0;
    if (length > 0) this.inPayload = true;
    else if (this.opcode >= OP_CLOSE) this.controlFrame(this.control.subarray(0, 0));
  }

  private tooBig(): WsProtocolError {
    return new WsProtocolError(CLOSE_TOO_BIG, `frame longer than ${this.maxPayload} bytes`);
  }

  /** Checks the first two bytes of a frame. */
  private checkStart(b0: number, b1: number): void {
    if ((b0 & 0x70) !== 0) {
      throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'reserved bits set (no extension was negotiated)');
    }
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if ((b1 & 0x80) === 0) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'unmasked frame from the client');
    if (opcode === OP_TEXT) {
      throw new WsProtocolError(
        CLOSE_UNSUPPORTED_DATA,
        'text frame: the tunnel link carries binary frames only',
      );
    }
    if (opcode === OP_BINARY || opcode === OP_CONTINUATION) {
      if (opcode === OP_BINARY && this.inMessage) {
        throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'new message before the last one ended');
      }
      if (opcode === OP_CONTINUATION && !this.inMessage) {
        throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'continuation frame outside a message');
      }
      this.inMessage = !fin;
    } else if (opcode === OP_CLOSE || opcode === OP_PING || opcode === OP_PONG) {
      if (!fin) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'fragmented control frame');
      if ((b1 & 0x7f) > MAX_CONTROL) {
        throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'control frame longer than 125 bytes');
      }
    } else {
      throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
    this.opcode = opcode;
  }

  private controlFrame(payload: Buffer): void {
    if (this.opcode === OP_PING) this.on.ping(payload);
    else if (this.opcode === OP_PONG) this.on.pong(payload);
    else this.on.close(...closePayload(payload));
  }
}

function closePayload(payload: Buffer): [code: number, reason: string] {
  if (payload.length === 0) return [CLOSE_NO_STATUS, ''];
  if (payload.length === 1) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, 'close frame of 1 byte');
  const code = payload.readUInt16BE(0);
  if (!isValidCloseCode(code)) throw new WsProtocolError(CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`);
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) throw new WsProtocolError(CLOSE_INVALID_PAYLOAD, 'close reason is not UTF-8');
  return [code, reason.toString('utf8')];
}

/** The header of an unmasked frame from the server (FIN set). Small: it comes from Node's buffer pool. */
export function serverFrameHeader(opcode: number, length: number): Buffer {
  let h: Buffer;
  if (length < 126) {
    h = Buffer.allocUnsafe(2);
    h[1] = length;
  } else if (length < 0x10000) {
    h = Buffer.allocUnsafe(4);
    h[1] = 126;
    h.writeUInt16BE(length, 2);
  } else {
    h = Buffer.allocUnsafe(10);
    h[1] = 127;
    h.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    h.writeUInt32BE(length >>> 0, 6);
  }
  h[0] = 0x80 | opcode;
  return h;
}

/** A close frame's payload: the code, then the reason cut to fit 125 bytes (on a character boundary). */
export function closeFramePayload(code: number, reason: string): Buffer {
  let r = Buffer.from(reason, 'utf8');
  if (r.length > MAX_CONTROL - 2) {
    let end = MAX_CONTROL - 2;
    while (end > 0 && (r[end] & 0xc0) === 0x80) end--;
    r = r.subarray(0, end);
  }
  const p = Buffer.allocUnsafe(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}
