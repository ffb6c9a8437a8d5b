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
  // Byte by byte: Buffer's checked writers and fill() cost more than these few stores, on every request.
  out[at + 2] = requestId >>> 8;
  out[at + 3] = requestId & 0xff;
  out[at + 4] = len >>> 8;
  out[at + 5] = len & 0xff;
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
 * Where records are put together before one copy leaves with the request: a request's parameters are
 * dozens of short strings, and a buffer of their own for each (then joined twice) cost more CPU than the
 * rest of the encoding. Grows to the largest request seen.
 */
let scratch = Buffer.allocUnsafe(16 * 1024);

/** Room for `more` bytes after `used` in the scratch buffer (whose first `used` bytes are kept). */
function reserve(used: number, more: number): Buffer {
  if (used + more > scratch.length) {
    const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, used + more));
    scratch.copy(bigger, 0, 0, used);
    scratch = bigger;
  }
  return scratch;
}

/**
 * Pairs up to this long are first written by a JavaScript loop that takes them for ASCII (most parameters
 * are a few bytes): cheaper than calls into C++ to measure and copy each of a request's dozens of strings.
 */
const SHORT_PAIR = 4096;

/** Writes an ASCII pair (lengths, name, value) at `at`; returns where it ends, or -1 if it is not ASCII. */
function writeAsciiPair(out: Buffer, at: number, name: string, value: string): number {
  at = writeLength(out, at, name.length);
  at = writeLength(out, at, value.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7f) return -1;
    out[at++] = c;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0x7f) return -1;
    out[at++] = c;
  }
  return at;
}

/** Closes the record whose header is at `start` and whose content ends at `end`: header, then padding. */
function closeRecord(type: RecordType, requestId: number, start: number, end: number): number {
  const len = end - start - HEADER_LEN;
  const padding = (8 - (len % 8)) % 8;
  const out = reserve(end, padding);
  writeHeader(out, start, type, requestId, len, padding);
  for (let i = end; i < end + padding; i++) out[i] = 0;
  return end + padding;
}

/** Name-value pairs as two arrays of the same length (what params.ts builds). */
export interface Pairs {
  readonly names: readonly string[];
  readonly values: readonly string[];
}

function pairsOf(params: Pairs | Iterable<readonly [string, string]>): Pairs {
  if ('names' in params) return params;
  const names: string[] = [];
  const values: string[] = [];
  for (const [name, value] of params) {
    names.push(name);
    values.push(value);
  }
  return { names, values };
}

/**
 * Writes the PARAMS stream into the scratch buffer from `at`: every name-value pair, then the empty record
 * that ends it; returns where it ends. A pair never straddles two records, because php-fpm parses each
 * PARAMS record on its own; a value too long for one record is cut (as Caddy v1 does).
 */
function writeParams(requestId: number, params: Pairs, at: number): number {
  const { names, values } = params;
  // `record` is where the open record's header goes; a pair that would not fit it closes it first.
  let record = at;
  at += HEADER_LEN;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const value = values[i];
    if (name.length + value.length <= SHORT_PAIR) {
      const size = lengthSize(name.length) + lengthSize(value.length) + name.length + value.length;
      if (at - record - HEADER_LEN + size > MAX_CONTENT) {
        at = closeRecord(RecordType.Params, requestId, record, at);
        record = at;
        at += HEADER_LEN;
      }
      const end = writeAsciiPair(reserve(at, size + 2 * HEADER_LEN), at, name, value);
      if (end >= 0) {
        at = end;
        continue;
      }
    }
    const nameBytes = Buffer.byteLength(name);
    const overhead = lengthSize(nameBytes) + 4 + nameBytes;
    if (overhead > MAX_PAIR) continue; // a name this long is never a real parameter
    let valueBytes = Buffer.byteLength(value);
    if (overhead + valueBytes > MAX_PAIR) valueBytes = MAX_PAIR - overhead;
    const size = lengthSize(nameBytes) + lengthSize(valueBytes) + nameBytes + valueBytes;
    if (at - record - HEADER_LEN + size > MAX_CONTENT) {
      at = closeRecord(RecordType.Params, requestId, record, at);
      record = at;
      at += HEADER_LEN;
    }
    const out = reserve(at, size + 2 * HEADER_LEN);
    at = writeLength(out, at, nameBytes);
    const valueLengthAt = at;
    at = writeLength(out, at, valueBytes);
    at += out.write(name, at, nameBytes, 'utf8');
    const written = out.write(value, at, valueBytes, 'utf8');
    // A cut value ends before a character that no longer fits whole: the length says what was written.
    if (written !== valueBytes) writeLength(out, valueLengthAt, written);
    at += written;
  }
  if (at > record + HEADER_LEN) {
    at = closeRecord(RecordType.Params, requestId, record, at);
    record = at;
    at += HEADER_LEN;
  }
  return closeRecord(RecordType.Params, requestId, record, at);
}

/**
 * The PARAMS stream: every name-value pair, then the empty record that ends it. A pair never straddles two
 * records, because php-fpm parses each PARAMS record on its own; a value too long for one record is cut
 * (as Caddy v1 does).
 */
export function encodeParams(requestId: number, params: Pairs | Iterable<readonly [string, string]>): Buffer {
  const end = writeParams(requestId, pairsOf(params), 0);
  return Buffer.from(scratch.subarray(0, end));
}

/** BEGIN_REQUEST (responder, FCGI_KEEP_CONN) at the start of `out`. */
function writeBegin(out: Buffer, requestId: number): void {
  writeHeader(out, 0, RecordType.BeginRequest, requestId, 8, 0);
  out[HEADER_LEN] = 0;
  out[HEADER_LEN + 1] = ROLE_RESPONDER;
  out[HEADER_LEN + 2] = FLAG_KEEP_CONN;
  for (let i = HEADER_LEN + 3; i < 2 * HEADER_LEN; i++) out[i] = 0;
}

/**
 * The start of a request as one buffer: BEGIN_REQUEST (responder, FCGI_KEEP_CONN), the PARAMS stream and,
 * for a request without a body, the empty STDIN record that ends it.
 */
export function encodeRequest(
  requestId: number,
  params: Pairs | Iterable<readonly [string, string]>,
  endStdin: boolean,
): Buffer {
  const pairs = pairsOf(params);
  const usual = encodeUsualRequest(requestId, pairs, endStdin);
  if (usual) return usual;
  writeBegin(reserve(0, 2 * HEADER_LEN), requestId);
  let end = writeParams(requestId, pairs, 2 * HEADER_LEN);
  if (endStdin) {
    writeHeader(reserve(end, HEADER_LEN), end, RecordType.Stdin, requestId, 0, 0);
    end += HEADER_LEN;
  }
  return Buffer.from(scratch.subarray(0, end));
}

/**
 * The usual request (ASCII parameters that fit one PARAMS record) written straight into a buffer of its
 * size: the same bytes as writeParams makes, without the copy out of the scratch buffer, which cost as
 * much as the encoding. Undefined for any other request.
 */
function encodeUsualRequest(requestId: number, pairs: Pairs, endStdin: boolean): Buffer | undefined {
  const { names, values } = pairs;
  let content = 0;
  for (let i = 0; i < names.length; i++) {
    const n = names[i].length;
    const v = values[i].length;
    if (n + v > SHORT_PAIR) return undefined;
    content += lengthSize(n) + lengthSize(v) + n + v;
  }
  if (content === 0 || content > MAX_CONTENT) return undefined;
  const padding = (8 - (content % 8)) % 8;
  const out = Buffer.allocUnsafe(4 * HEADER_LEN + content + padding + (endStdin ? HEADER_LEN : 0));
  writeBegin(out, requestId);
  writeHeader(out, 2 * HEADER_LEN, RecordType.Params, requestId, content, padding);
  let at = 3 * HEADER_LEN;
  for (let i = 0; i < names.length; i++) {
    at = writeAsciiPair(out, at, names[i], values[i]);
    if (at < 0) return undefined;
  }
  for (let i = 0; i < padding; i++) out[at++] = 0;
  writeHeader(out, at, RecordType.Params, requestId, 0, 0);
  if (endStdin) writeHeader(out, at + HEADER_LEN, RecordType.Stdin, requestId, 0, 0);
  return out;
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

/** Takes records as RecordParser finds them (an object's method: no closure per chunk read). */
export interface RecordSink {
  /** `content` is a view into the received bytes: valid until the next feed() unless copied. */
  record(type: number, requestId: number, content: Buffer): void;
}

/**
 * Turns socket chunks into records. Content is handed out as views into the chunks (no copy) except when a
 * record straddles chunk boundaries, where only that record's bytes are joined.
 */
export class RecordParser {
  private pending: Buffer | undefined;

  /** Feeds a chunk; calls onRecord for every complete record. Throws on a malformed header. */
  push(chunk: Buffer, onRecord: (record: FcgiRecord) => void): void {
    this.feed(chunk, { record: (type, requestId, content) => onRecord({ type, requestId, content }) });
  }

  /** Feeds a chunk; gives every complete record to the sink. Throws on a malformed header. */
  feed(chunk: Buffer, sink: RecordSink): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let at = 0;
    while (buf.length - at >= HEADER_LEN) {
      if (buf[at] !== FCGI_VERSION) throw new Error(`FastCGI protocol error: version ${buf[at]}`);
      const len = (buf[at + 4] << 8) | buf[at + 5];
      const total = HEADER_LEN + len + buf[at + 6];
      if (buf.length - at < total) break;
      sink.record(
        buf[at + 1],
        (buf[at + 2] << 8) | buf[at + 3],
        buf.subarray(at + HEADER_LEN, at + HEADER_LEN + len),
      );
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
