// The FastCGI 1.0 record layer: encoding what a web server sends, and an incremental parser for what the
// application sends back. No I/O here; connection.ts puts it on a socket.

export const FCGI_VERSION = 1;
export const HEADER_LEN = 8;
/** The largest record content (the length field is 16 bits). */
export const MAX_CONTENT = 0xffff;

export const enum RecordType {
  BeginRequest = 1,
  AbortRequest = 2,
  EndRequest = 3,
  Params = 4,
  Stdin = 5,
  Stdout = 6,
  Stderr = 7,
  Data = 8,
  GetValues = 9,
  GetValuesResult = 10,
  UnknownType = 11,
}

const ROLE_RESPONDER = 1;
const FLAG_KEEP_CONN = 1;

/** END_REQUEST protocol status values. */
export const enum ProtocolStatus {
  RequestComplete = 0,
  CantMultiplex = 1,
  Overloaded = 2,
  UnknownRole = 3,
}

/**
 * One record: header, content, then padding so the next record starts on an 8-byte boundary (the spec
 * recommends it; php-fpm accepts either). Content longer than MAX_CONTENT must be split by the caller.
 */
export function encodeRecord(type: RecordType, requestId: number, content?: Buffer): Buffer {
  const len = content?.length ?? 0;
  const padding = (8 - (len % 8)) % 8;
  const out = Buffer.allocUnsafe(HEADER_LEN + len + padding);
  writeHeader(out, 0, type, requestId, len, padding);
  if (content) content.copy(out, HEADER_LEN);
  out.fill(0, HEADER_LEN + len);
  return out;
}

function writeHeader(
  out: Buffer,
  at: number,
  type: RecordType,
  requestId: number,
  len: number,
  padding: number,
): void {
  out[at] = FCGI_VERSION;
  out[at + 1] = type;
  out.writeUInt16BE(requestId, at + 2);
  out.writeUInt16BE(len, at + 4);
  out[at + 6] = padding;
  out[at + 7] = 0;
}

/**
 * A stream's data as records of at most MAX_CONTENT bytes, as one buffer ready to write. Large chunks are
 * split; each piece costs one copy, which keeps a single socket write per chunk.
 */
export function encodeStream(type: RecordType, requestId: number, data: Buffer): Buffer {
  if (data.length <= MAX_CONTENT) return encodeRecord(type, requestId, data);
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_CONTENT) {
    parts.push(encodeRecord(type, requestId, data.subarray(off, Math.min(off + MAX_CONTENT, data.length))));
  }
  return Buffer.concat(parts);
}

/** BEGIN_REQUEST for a responder that keeps the connection open for the next request. */
export function encodeBeginRequest(requestId: number, keepConn = true): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(ROLE_RESPONDER, 0);
  body[2] = keepConn ? FLAG_KEEP_CONN : 0;
  return encodeRecord(RecordType.BeginRequest, requestId, body);
}

/** A length as FastCGI writes it: one byte below 128, otherwise four bytes with the top bit set. */
function lengthSize(n: number): number {
  return n < 128 ? 1 : 4;
}

function writeLength(out: Buffer, at: number, n: number): number {
  if (n < 128) {
    out[at] = n;
    return at + 1;
  }
  out.writeUInt32BE((n | 0x80000000) >>> 0, at);
  return at + 4;
}

/** The biggest name-value pair that fits one record (8 bytes of lengths at most). */
const MAX_PAIR = MAX_CONTENT - 8;

/**
 * The PARAMS stream: every name-value pair, then the empty record that ends it. A pair never straddles two
 * records, because php-fpm parses each PARAMS record on its own; a value too long for one record is cut
 * (as Caddy v1 does).
 */
export function encodeParams(requestId: number, params: Iterable<readonly [string, string]>): Buffer {
  const records: Buffer[] = [];
  let pairs: Buffer[] = [];
  let size = 0;
  const flush = () => {
    if (size === 0) return;
    records.push(encodeRecord(RecordType.Params, requestId, Buffer.concat(pairs, size)));
    pairs = [];
    size = 0;
  };
  for (const [name, value] of params) {
    const n = Buffer.from(name, 'utf8');
    let v = Buffer.from(value, 'utf8');
    const overhead = lengthSize(n.length) + 4 + n.length;
    if (overhead > MAX_PAIR) continue; // a name this long is never a real parameter
    if (overhead + v.length > MAX_PAIR) v = v.subarray(0, MAX_PAIR - overhead);
    const pair = Buffer.allocUnsafe(lengthSize(n.length) + lengthSize(v.length) + n.length + v.length);
    let at = writeLength(pair, 0, n.length);
    at = writeLength(pair, at, v.length);
    n.copy(pair, at);
    v.copy(pair, at + n.length);
    if (size + pair.length > MAX_CONTENT) flush();
    pairs.push(pair);
    size += pair.length;
  }
  flush();
  records.push(encodeRecord(RecordType.Params, requestId));
  return Buffer.concat(records);
}

/** FCGI_GET_VALUES asking for these variables (the values are left empty, as the spec says). */
export function encodeGetValues(names: readonly string[]): Buffer {
  const params = encodeParams(
    0,
    names.map((n) => [n, ''] as const),
  );
  // encodeParams made a PARAMS record and its empty terminator: keep the first record's content.
  return encodeRecord(
    RecordType.GetValues,
    0,
    params.subarray(HEADER_LEN, HEADER_LEN + params.readUInt16BE(4)),
  );
}

/** Decodes name-value pairs (for tests and GET_VALUES results). */
export function decodePairs(content: Buffer): [string, string][] {
  const out: [string, string][] = [];
  let at = 0;
  const readLength = (): number => {
    const b = content[at];
    if (b < 128) {
      at += 1;
      return b;
    }
    const n = content.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return n;
  };
  while (at < content.length) {
    const nl = readLength();
    const vl = readLength();
    const name = content.toString('utf8', at, at + nl);
    const value = content.toString('utf8', at + nl, at + nl + vl);
    at += nl + vl;
    out.push([name, value]);
  }
  return out;
}

export interface FcgiRecord {
  readonly type: number;
  readonly requestId: number;
  /** A view into the received bytes: valid until the next push() unless copied. */
  readonly content: Buffer;
}

/**
 * Turns socket chunks into records. Content is handed out as views into the chunks (no copy) except when a
 * record straddles chunk boundaries, where only that record's bytes are joined.
 */
export class RecordParser {
  private pending: Buffer | undefined;

  /** Feeds a chunk; calls onRecord for every complete record. Throws on a malformed header. */
  push(chunk: Buffer, onRecord: (record: FcgiRecord) => void): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let at = 0;
    while (buf.length - at >= HEADER_LEN) {
      if (buf[at] !== FCGI_VERSION) throw new Error(`FastCGI protocol error: version ${buf[at]}`);
      const len = buf.readUInt16BE(at + 4);
      const total = HEADER_LEN + len + buf[at + 6];
      if (buf.length - at < total) break;
      onRecord({
        type: buf[at + 1],
        requestId: buf.readUInt16BE(at + 2),
        content: buf.subarray(at + HEADER_LEN, at + HEADER_LEN + len),
      });
      at += total;
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }

  /** Bytes of an incomplete record held back. */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}

/** END_REQUEST content: the application's exit status and the protocol status. */
export function decodeEndRequest(content: Buffer): { appStatus: number; protocolStatus: ProtocolStatus } {
  if (content.length < 8) return { appStatus: 0, protocolStatus: ProtocolStatus.RequestComplete };
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4] };
}
