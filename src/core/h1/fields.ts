// The head of an upstream's HTTP/1.x response, field by field (RFC 9112 §4, §5; RFC 9110 §5.5, §8.6): the
// status line, one field line, Content-Length, and a field map shaped as Node's IncomingMessage.headers.
// Every malformed input is an UpstreamProtocolError (a 502 for the client).
import type { IncomingHttpHeaders } from 'node:http';

export class UpstreamProtocolError extends Error {
  readonly code = 'EUPSTREAMPROTO';
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value may hold HTAB, visible ASCII, SP and obs-text; never CR, LF, NUL or other controls. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Repeats of these are dropped (the first wins), as Node's IncomingMessage does. */
const SINGLE_VALUED = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]); // prettier-ignore

export function protocolError(message: string): UpstreamProtocolError {
  return new UpstreamProtocolError(`invalid response from upstream: ${message}`);
}

/** `HTTP/1.x SP 3DIGIT SP reason` (the reason may be empty, and its SP missing then, as Go accepts). */
export function parseStatusLine(line: string): { minor: number; code: number; reason: string } {
  const minor = line.charCodeAt(7) - 0x30;
  if (!line.startsWith('HTTP/1.') || (minor !== 0 && minor !== 1) || line.charCodeAt(8) !== 0x20)
    throw protocolError(`bad status line ${JSON.stringify(line.slice(0, 64))}`);
  const code = Number(line.slice(9, 12));
  if (!/^[1-9]\d\d$/.test(line.slice(9, 12)) || (line.length > 12 && line.charCodeAt(12) !== 0x20))
    throw protocolError(`bad status code in ${JSON.stringify(line.slice(0, 64))}`);
  const reason = line.slice(13);
  if (BAD_VALUE.test(reason)) throw protocolError('control character in the reason phrase');
  return { minor, code, reason };
}

/** One `name: value` line of text[pos, end): the name lowercased and checked, the value trimmed and checked. */
export function parseFieldLine(text: string, pos: number, end: number): [string, string] {
  const c = text.charCodeAt(pos);
  if (c === 0x20 || c === 0x09) throw protocolError('obsolete line folding in a header field');
  const colon = text.indexOf(':', pos);
  if (colon < 0 || colon >= end) throw protocolError('header line without a colon');
  const name = text.slice(pos, colon);
  if (!TOKEN.test(name)) throw protocolError(`invalid header name ${JSON.stringify(name.slice(0, 64))}`);
  let from = colon + 1;
  let to = end;
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  const value = text.slice(from, to);
  if (BAD_VALUE.test(value)) throw protocolError(`invalid character in header ${name}`);
  return [name.toLowerCase(), value];
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Content-Length: digits only; repeats (or a list) must all agree (RFC 9110 §8.6). */
export function parseContentLength(value: string, previous: number): number {
  let result = previous;
  for (const part of value.split(',')) {
    const digits = part.trim();
    if (!/^\d{1,15}$/.test(digits)) throw protocolError(`invalid Content-Length ${JSON.stringify(value)}`);
    const n = Number(digits);
    if (result >= 0 && n !== result) throw protocolError('several differing Content-Length values');
    result = n;
  }
  return result;
}

/**
 * An empty field map with no prototype: an upstream's `Constructor` or `__proto__` field is a field like
 * any other, never merged with (or assigned over) what a plain object inherits.
 */
export function fieldMap(): IncomingHttpHeaders {
  return Object.create(null) as IncomingHttpHeaders;
}

/** Adds a field the way IncomingMessage does: set-cookie a list, single-valued ones first-wins, else joined. */
export function addField(headers: IncomingHttpHeaders, name: string, value: string): void {
  const previous = headers[name];
  if (previous === undefined) {
    headers[name] = name === 'set-cookie' ? [value] : value;
  } else if (name === 'set-cookie') {
    (previous as string[]).push(value);
  } else if (!SINGLE_VALUED.has(name)) {
    headers[name] = `${previous as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
}
