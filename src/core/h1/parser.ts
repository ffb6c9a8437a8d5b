// A small, strict, incremental HTTP/1.x response parser (RFC 9112) for our HTTP/1.1 clients (the proxy's to
// its upstreams, the tunnel client's to its target): the status line and header fields of one response (1xx
// interim answers skipped; a 101 to an upgrade request ends the HTTP part), then its body framed by §6.3 —
// none, Content-Length, chunked (with trailers) or until the connection closes. Body bytes are handed on as
// views of the received chunks, never copied; no chunk is kept after execute() returns (the client's read
// buffer is reused), so a partial head is copied. Anything malformed is an UpstreamProtocolError, which both
// clients answer with a 502: a confused upstream must not be guessed around.
import type { IncomingHttpHeaders } from 'node:http';
import {
  addField,
  fieldMap,
  parseContentLength,
  parseFieldLine,
  parseStatusLine,
  protocolError,
} from './fields.js';

/** The most bytes a response head (or the trailer section) may take; more is a 502 (as Go's 1 MB, nginx's 4–8 KB). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Interim (1xx) responses accepted before the final one (Go allows 5). */
const MAX_INTERIM = 5;
/** Hex digits of a chunk size: 13 keeps it within Number.MAX_SAFE_INTEGER. */
const MAX_SIZE_DIGITS = 13;
/** A chunk extension longer than this is refused (they are ignored, but must not be endless). */
const MAX_EXTENSION_BYTES = 4096;

/** The final response head; `headers` is shaped as IncomingMessage.headers (lowercase, Node's joining). */
export interface ResponseHead {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly headers: IncomingHttpHeaders;
}

/** A 101 Switching Protocols head, with the fields as received (for passing on unchanged). */
export interface UpgradeHead extends ResponseHead {
  /** [name, value, name, value, …] with the names' case as the upstream wrote them. */
  readonly rawHeaders: string[];
}

export interface ResponseEvents {
  onHead(head: ResponseHead): void;
  /**
   * The upstream switched protocols (only when the parser was made for an upgrade request). `rest` is what
   * followed the head in the same read: a view valid only until execute() returns. Nothing more is parsed.
   */
  onUpgrade?(head: UpgradeHead, rest: Buffer): void;
  /** A part of the body: a view of the received chunk, valid only until execute() returns. */
  onBody(chunk: Buffer): void;
  /** The body ended as framed (or at close, for a close-delimited one). */
  onComplete(trailers: IncomingHttpHeaders | undefined): void;
}

// Parser states.
const HEAD = 0;
const FIXED = 1;
const UNTIL_CLOSE = 2;
const CHUNK_SIZE = 3;
const CHUNK_EXT = 4;
const CHUNK_SIZE_LF = 5;
const CHUNK_DATA = 6;
const CHUNK_DATA_CR = 7;
const CHUNK_DATA_LF = 8;
const TRAILERS = 9;
const DONE = 10;
/** After a 101 to an upgrade request: the bytes are no longer HTTP. */
const UPGRADED = 11;

const CR = 0x0d;
const LF = 0x0a;
const HEAD_END = Buffer.from('\r\n\r\n');

export class ResponseParser {
  private readonly events: ResponseEvents;
  /** HEAD request: the response has no body whatever it announces. */
  private readonly headRequest: boolean;
  /** The request asked for a protocol switch: a 101 ends the HTTP exchange. */
  private readonly upgradeRequest: boolean;
  private state = HEAD;
  /** Head bytes received so far that did not yet complete a head. */
  private pending: Buffer | undefined;
  private headBytes = 0;
  private interim = 0;
  /** Body bytes (FIXED) or chunk bytes (CHUNK_DATA) still to come. */
  private remaining = 0;
  private sizeDigits = 0;
  /** Whitespace followed the size digits: only an extension or the line end may come now. */
  private sizeEnded = false;
  private extensionBytes = 0;
  private trailerText = '';
  private persistent = false;
  /** Bytes arrived after the end of the response: the connection is out of step. */
  private extra = false;
  /** Bytes received at all (a connection that closes before any is a stale pooled one). */
  bytesSeen = 0;
  private upgradeHead: UpgradeHead | undefined;

  constructor(headRequest: boolean, events: ResponseEvents, upgradeRequest = false) {
    this.headRequest = headRequest;
    this.upgradeRequest = upgradeRequest;
    this.events = events;
  }

  /** Did the response end cleanly, framed, with the connection left fit for another request? */
  get reusable(): boolean {
    return this.state === DONE && this.persistent && !this.extra;
  }

  get complete(): boolean {
    return this.state === DONE;
  }

  /** After the head: the body's length if it is framed by Content-Length (and not empty), else -1. */
  get fixedLength(): number {
    return this.state === FIXED ? this.remaining : -1;
  }

  /** Consumes one received chunk, calling the events; throws UpstreamProtocolError on malformed input. */
  execute(chunk: Buffer): void {
    this.bytesSeen += chunk.length;
    let data = chunk;
    let pos = 0;
    let ended = false;
    if (this.state === UPGRADED) return;
    if (this.state === HEAD) {
      pos = this.readHeads(chunk);
      if (pos < 0) return;
      data = this.pending ?? chunk;
      this.pending = undefined;
      ended = (this.state as number) === DONE;
    }
    const len = data.length;
    while (pos < len) {
      switch (this.state) {
        case FIXED: {
          const n = Math.min(this.remaining, len - pos);
          this.events.onBody(data.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = DONE;
            ended = true;
          }
          break;
        }
        case UNTIL_CLOSE:
          this.events.onBody(pos === 0 ? data : data.subarray(pos));
          pos = len;
          break;
        case CHUNK_SIZE: {
          const c = data[pos++];
          const digit = hexValue(c);
          if (digit >= 0 && !this.sizeEnded) {
            if (++this.sizeDigits > MAX_SIZE_DIGITS) throw protocolError('chunk size too large');
            this.remaining = this.remaining * 16 + digit;
          } else if (this.sizeDigits === 0) throw protocolError('invalid chunk size');
          else if (c === CR) this.state = CHUNK_SIZE_LF;
          else if (c === 0x3b)
            this.state = CHUNK_EXT; // ';'
          else if (c === 0x20 || c === 0x09)
            this.sizeEnded = true; // BWS before an extension
          else throw protocolError('invalid chunk size');
          break;
        }
        case CHUNK_EXT: {
          // Extensions are ignored (Go, nginx); only their length is bounded.
          const cr = data.indexOf(CR, pos);
          const end = cr < 0 ? len : cr;
          this.extensionBytes += end - pos;
          if (this.extensionBytes > MAX_EXTENSION_BYTES) throw protocolError('chunk extension too long');
          if (data.subarray(pos, end).includes(LF)) throw protocolError('bare LF in chunk extension');
          pos = cr < 0 ? len : cr + 1;
          if (cr >= 0) this.state = CHUNK_SIZE_LF;
          break;
        }
        case CHUNK_SIZE_LF:
          if (data[pos++] !== LF) throw protocolError('chunk size line not ended by CRLF');
          this.sizeDigits = 0;
          this.sizeEnded = false;
          this.extensionBytes = 0;
          if (this.remaining > 0) this.state = CHUNK_DATA;
          else {
            // The last chunk; the trailer section follows. A leading CRLF lets one search find its end.
            this.state = TRAILERS;
            this.trailerText = '\r\n';
          }
          break;
        case CHUNK_DATA: {
          const n = Math.min(this.remaining, len - pos);
          this.events.onBody(data.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = CHUNK_DATA_CR;
          break;
        }
        case CHUNK_DATA_CR:
          if (data[pos++] !== CR) throw protocolError('chunk data not ended by CRLF');
          this.state = CHUNK_DATA_LF;
          break;
        case CHUNK_DATA_LF:
          if (data[pos++] !== LF) throw protocolError('chunk data not ended by CRLF');
          this.state = CHUNK_SIZE;
          break;
        case TRAILERS: {
          const before = this.trailerText.length;
          const take = Math.min(len, pos + MAX_HEAD_BYTES);
          this.trailerText += data.toString('latin1', pos, take);
          const end = this.trailerText.indexOf('\r\n\r\n', Math.max(0, before - 3));
          if (end < 0) {
            if (this.trailerText.length > MAX_HEAD_BYTES) throw protocolError('trailer section too large');
            pos = take;
            break;
          }
          pos += end + 4 - before;
          this.state = DONE;
          ended = true;
          break;
        }
        default:
          // DONE: anything more is not ours to read.
          this.extra = true;
          pos = len;
      }
    }
    if (ended) this.events.onComplete(this.trailers());
  }

  /** The connection closed: ends a close-delimited body; throws if the response was not complete. */
  finish(): void {
    if (this.state === UNTIL_CLOSE) {
      this.state = DONE;
      this.events.onComplete(undefined);
      return;
    }
    if (this.state !== DONE) throw protocolError('connection closed before the response was complete');
  }

  /**
   * Reads heads (skipping interim ones) until the final one. Returns where the body starts in the data to
   * go on with (`this.pending` if set, else `chunk`), or -1 when more bytes are needed.
   */
  private readHeads(chunk: Buffer): number {
    let data = chunk;
    let scanFrom = 0;
    if (this.pending) {
      scanFrom = Math.max(0, this.pending.length - 3);
      data = Buffer.concat([this.pending, chunk]);
    }
    let start = 0;
    for (;;) {
      const end = data.indexOf(HEAD_END, scanFrom);
      if (end < 0 || end + 4 - start + this.headBytes > MAX_HEAD_BYTES) {
        if (data.length - start + this.headBytes > MAX_HEAD_BYTES)
          throw protocolError('response head too large');
        // Kept past this chunk: a copy unless it is one already (the concatenation above).
        this.pending = data === chunk ? Buffer.from(data.subarray(start)) : data.subarray(start);
        return -1;
      }
      const kind = this.parseHead(data.toString('latin1', start, end + 2));
      this.headBytes += end + 4 - start;
      start = end + 4;
      scanFrom = start;
      if (kind === 'upgrade') {
        this.pending = undefined;
        this.events.onUpgrade!(this.upgradeHead!, data.subarray(start));
        this.upgradeHead = undefined;
        return -1;
      }
      if (kind === 'final') {
        this.pending = data === chunk ? undefined : data;
        return start;
      }
    }
  }

  /** Parses one head (text up to and including its last field's CRLF). */
  private parseHead(text: string): 'interim' | 'final' | 'upgrade' {
    let lineEnd = text.indexOf('\r\n');
    const status = parseStatusLine(text.slice(0, lineEnd));
    const switching = status.code === 101 && this.upgradeRequest;
    const rawHeaders: string[] = [];
    const headers = fieldMap();
    let contentLength = -1;
    let transferEncoding: string | undefined;
    let close = false;
    let keepAlive = false;
    for (let pos = lineEnd + 2; pos < text.length; pos = lineEnd + 2) {
      lineEnd = text.indexOf('\r\n', pos);
      const [name, value] = parseFieldLine(text, pos, lineEnd);
      if (switching) rawHeaders.push(text.slice(pos, text.indexOf(':', pos)), value);
      switch (name) {
        case 'content-length':
          contentLength = parseContentLength(value, contentLength);
          break;
        case 'transfer-encoding':
          transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
          break;
        case 'connection':
          for (const token of value.toLowerCase().split(',')) {
            const t = token.trim();
            if (t === 'close') close = true;
            else if (t === 'keep-alive') keepAlive = true;
          }
          break;
      }
      addField(headers, name, value);
    }
    const code = status.code;
    if (switching) {
      this.state = UPGRADED;
      this.upgradeHead = { statusCode: code, statusMessage: status.reason, headers, rawHeaders };
      return 'upgrade';
    }
    if (code < 200) {
      if (code === 101) throw protocolError('101 Switching Protocols to a request that asked for no upgrade');
      if (++this.interim > MAX_INTERIM) throw protocolError('too many interim (1xx) responses');
      return 'interim';
    }
    this.persistent = !close && (status.minor === 1 || keepAlive);
    if (this.headRequest || code === 204 || code === 304) this.state = DONE;
    else if (transferEncoding !== undefined) {
      if (status.minor === 0) throw protocolError('Transfer-Encoding in an HTTP/1.0 response');
      // Transfer-Encoding overrides Content-Length, which must not be passed on; such a message is suspect,
      // so the connection is not reused (RFC 9112 §6.3).
      if (contentLength >= 0) {
        delete headers['content-length'];
        this.persistent = false;
      }
      // Only chunked is undone here; a body under another transfer coding (`gzip, chunked`) would reach the
      // client still encoded and labelled as if it were not: refused, as Go's Transport does.
      if (transferEncoding.trim().toLowerCase() !== 'chunked')
        throw protocolError(`unsupported transfer coding ${JSON.stringify(transferEncoding.slice(0, 64))}`);
      this.state = CHUNK_SIZE;
    } else if (contentLength >= 0) {
      headers['content-length'] = String(contentLength);
      this.remaining = contentLength;
      this.state = contentLength === 0 ? DONE : FIXED;
    } else {
      this.state = UNTIL_CLOSE;
      this.persistent = false;
    }
    this.events.onHead({ statusCode: code, statusMessage: status.reason, headers });
    return 'final';
  }

  private trailers(): IncomingHttpHeaders | undefined {
    const text = this.trailerText;
    this.trailerText = '';
    // text is CRLF, the field lines (each ending in CRLF), CRLF, and maybe the start of what follows.
    const end = text.indexOf('\r\n\r\n');
    if (end <= 0) return undefined;
    const trailers = fieldMap();
    for (let pos = 2; pos < end + 2;) {
      const lineEnd = text.indexOf('\r\n', pos);
      const [name, value] = parseFieldLine(text, pos, lineEnd);
      addField(trailers, name, value);
      pos = lineEnd + 2;
    }
    return trailers;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x57;
  return -1;
}
