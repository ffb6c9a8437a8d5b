// Request and response heads as they cross the tunnel (the JSON in OPEN and REPLY frames), and what is
// filtered on the way: a request loses Host (rebuilt by the client), Expect and the tunnel's own headers; a
// response loses hop-by-hop fields, whichever side wrote them. Header fields travel as a flat list
// [name, value, name, value, …] (a value may be a list, as Set-Cookie is) and come back as an object without
// a prototype, so a field named `__proto__` stays a field.
import { validateHeaderName, validateHeaderValue } from '../core/node-http.js';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { connectionTokens, isHopByHop } from '../core/forwarded.js';
import { ProtocolError } from './frames.js';
import { H_DETAIL, H_ERROR, HEADER_PREFIX, type StreamErrorCode } from './protocol.js';

type HeaderValue = string | number | string[];
export type HeaderList = (string | HeaderValue)[];

/** A request as it crosses the tunnel. `protocol` is set for an Upgrade; method CONNECT alone is TCP. */
export interface RequestHead {
  method: string;
  path: string;
  authority: string;
  protocol?: string;
  headers: OutgoingHttpHeaders;
}

export interface ResponseHead {
  status: number;
  headers: OutgoingHttpHeaders;
}

/** Headers that never cross the tunnel on a request (besides hop-by-hop ones, removed before). */
const REQUEST_DROP = new Set(['host', 'expect', 'http2-settings']);

/** The wire form of a request whose headers are already without hop-by-hop fields. */
export function requestWire(h: RequestHead): unknown {
  const list: HeaderList = [];
  for (const key of Object.keys(h.headers)) {
    // The tunnel's own headers come from the server alone, never from a visitor.
    if (REQUEST_DROP.has(key) || key.charCodeAt(0) === 0x3a || key.startsWith(HEADER_PREFIX)) continue;
    const value = h.headers[key];
    if (value !== undefined) list.push(key, value);
  }
  return [h.method, h.path, h.authority, h.protocol ?? '', list];
}

export function requestOf(wire: unknown): RequestHead {
  if (!Array.isArray(wire) || wire.length !== 5) throw new ProtocolError('bad request head');
  const [method, path, authority, protocol, list] = wire as unknown[];
  if (
    typeof method !== 'string' ||
    typeof path !== 'string' ||
    typeof authority !== 'string' ||
    typeof protocol !== 'string'
  ) {
    throw new ProtocolError('bad request head');
  }
  return { method, path, authority, ...(protocol && { protocol }), headers: headersOf(list, false) };
}

/**
 * The wire form of a response. `headers` as the target sent them (hop-by-hop fields, and the tunnel's error
 * headers, which only the client itself may set, are dropped), or the client's own (`trusted`).
 */
export function responseWire(
  status: number,
  headers: IncomingHttpHeaders | OutgoingHttpHeaders,
  trusted = false,
): unknown {
  const list: HeaderList = [];
  const named = trusted ? [] : connectionTokens(headers.connection);
  for (const key of Object.keys(headers)) {
    if (!trusted && (isHopByHop(key) || key === H_ERROR || key === H_DETAIL || named.includes(key))) continue;
    const value = headers[key];
    if (value !== undefined) list.push(key, value);
  }
  return [status, list];
}

/** The wire form of a failure the client reports instead of the target's answer. */
export function errorWire(status: number, code: StreamErrorCode, detail: string): unknown {
  return responseWire(status, { [H_ERROR]: code, [H_DETAIL]: detail }, true);
}

/** A response head from the client; hop-by-hop fields are dropped here too (a client may be broken). */
export function responseOf(wire: unknown): ResponseHead {
  if (!Array.isArray(wire) || wire.length !== 2) throw new ProtocolError('bad response head');
  const [status, list] = wire as unknown[];
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 999) {
    throw new ProtocolError('bad response head');
  }
  return { status, headers: headersOf(list, true) };
}

function isValue(v: unknown): v is HeaderValue {
  return (
    typeof v === 'string' ||
    typeof v === 'number' ||
    (Array.isArray(v) && v.every((x) => typeof x === 'string'))
  );
}

function headersOf(list: unknown, dropHopByHop: boolean): OutgoingHttpHeaders {
  if (!Array.isArray(list) || list.length % 2 !== 0) throw new ProtocolError('bad header list');
  const out = Object.create(null) as OutgoingHttpHeaders;
  for (let i = 0; i < list.length; i += 2) {
    const name: unknown = list[i];
    const value: unknown = list[i + 1];
    if (typeof name !== 'string' || !isValue(value)) throw new ProtocolError('bad header field');
    if (name.charCodeAt(0) === 0x3a || (dropHopByHop && isHopByHop(name))) continue;
    out[name] = value;
  }
  return out;
}

/** Is this a field Node would write (a token name, a value without CR, LF or NUL)? */
function writable(name: string, value: string): boolean {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * `HTTP/1.1 101 Switching Protocols` plus headers, for an upgrade answered across the tunnel. Written raw to
 * the visitor's socket, so a field Node would refuse is left out rather than written.
 */
export function switchingProtocolsHead(protocol: string, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n`;
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key === 'connection' || key === 'upgrade') continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (writable(key, String(v))) head += `${key}: ${String(v)}\r\n`;
    }
  }
  return `${head}\r\n`;
}
