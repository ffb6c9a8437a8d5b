// String and time formatting for placeholders, the way Go's standard library does it (url, textproto, cookies,
// time layouts). Pure functions, no request state.

// ---------------------------------------------------------------------------------------------------------------
// Escaping (Go's url.QueryEscape)

const HEX = '0123456789ABCDEF';

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x5f || // _
    c === 0x7e // ~
  );
}

function pct(b: number): string {
  return '%' + HEX[b >> 4] + HEX[b & 15];
}

/** Go's url.QueryEscape: everything but `A-Za-z0-9-_.~` is %XX-escaped (UTF-8), and space becomes `+`. */
export function queryEscape(s: string): string {
  let i = 0;
  while (i < s.length && isUnreserved(s.charCodeAt(i))) i++;
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      out += isUnreserved(c) ? s[i] : c === 0x20 ? '+' : pct(c);
      continue;
    }
    let cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    else if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate: Go would see U+FFFD
    if (cp < 0x800) out += pct(0xc0 | (cp >> 6)) + pct(0x80 | (cp & 63));
    else if (cp < 0x10000)
      out += pct(0xe0 | (cp >> 12)) + pct(0x80 | ((cp >> 6) & 63)) + pct(0x80 | (cp & 63));
    else
      out +=
        pct(0xf0 | (cp >> 18)) +
        pct(0x80 | ((cp >> 12) & 63)) +
        pct(0x80 | ((cp >> 6) & 63)) +
        pct(0x80 | (cp & 63));
  }
  return out;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Go's url.QueryUnescape (`+` is a space); undefined for a malformed `%` escape. */
export function queryUnescape(s: string): string | undefined {
  if (s.indexOf('%') < 0) return s.indexOf('+') < 0 ? s : s.replaceAll('+', ' ');
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hi = i + 2 < s.length ? hexVal(s.charCodeAt(i + 1)) : -1;
      const lo = hi < 0 ? -1 : hexVal(s.charCodeAt(i + 2));
      if (lo < 0) return undefined;
      bytes.push((hi << 4) | lo);
      i += 2;
    } else if (c === 0x2b) bytes.push(0x20);
    else if (c < 0x80) bytes.push(c);
    else for (const b of Buffer.from(s[i], 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Go's net.SplitHostPort, lenient: [host, port], or undefined when `s` has no port. */
export function splitHostPort(s: string): [string, string] | undefined {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s.charCodeAt(end + 1) !== 0x3a /* : */) return undefined;
    const port = s.slice(end + 2);
    return port.indexOf(':') < 0 ? [s.slice(1, end), port] : undefined;
  }
  const colon = s.lastIndexOf(':');
  if (colon < 0 || s.indexOf(':') !== colon) return undefined; // no port, or a bare IPv6 address
  return [s.slice(0, colon), s.slice(colon + 1)];
}

/** Go's textproto.CanonicalMIMEHeaderKey for a valid token: `content-type` → `Content-Type`. */
export function canonicalHeaderKey(name: string): string {
  let out = '';
  let upper = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x20) return name; // not a token: Go leaves it alone
    if (upper && c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 32);
    else if (!upper && c >= 0x41 && c <= 0x5a) out += String.fromCharCode(c + 32);
    else out += name[i];
    upper = c === 0x2d;
  }
  return out;
}

/**
 * Control characters as visible escapes: `\r`, `\n`, `\t`, and `\xHH` for the other C0 controls, DEL and
 * the C1 controls (which some terminals obey). What a request put into a log line can then neither start
 * a line of its own nor drive the terminal of whoever reads the log.
 */
export function escapeControl(s: string): string {
  let i = 0;
  while (i < s.length && !isControl(s.charCodeAt(i))) i++;
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isControl(c)) out += s[i];
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
  }
  return out;
}

function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** Shows CR and LF as a backslash and `r` / `n` (keeps a dump on one log line). */
export function escapeCrLf(s: string): string {
  if (s.indexOf('\r') < 0 && s.indexOf('\n') < 0) return s;
  return s.replaceAll('\r', '\\r').replaceAll('\n', '\\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Time

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function pad4(n: number): string {
  return n >= 1000 ? String(n) : String(n).padStart(4, '0');
}

/** Local time as `02/Jan/2006:15:04:05 -0700` (the common log format). */
export function formatCommonLogTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const abs = off < 0 ? -off : off;
  const zone = (off < 0 ? '-' : '+') + pad2(Math.floor(abs / 60)) + pad2(abs % 60);
  return (
    `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${pad4(d.getFullYear())}:` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone}`
  );
}

/** Local time as `2006-01-02T15:04:05` (no zone). */
export function formatIsoLocal(d: Date): string {
  return (
    `${pad4(d.getFullYear())}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/** UTC time as `2006-01-02T15:04:05Z`. */
export function formatIsoUtc(d: Date): string {
  return (
    `${pad4(d.getUTCFullYear())}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}Z`
  );
}

/** UTC time as `Jan 02 15:04:05 2006 UTC` (certificate validity). */
export function formatCertTime(d: Date): string {
  return (
    `${MONTHS[d.getUTCMonth()]} ${pad2(d.getUTCDate())} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ${pad4(d.getUTCFullYear())} UTC`
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Cookies and query arguments

/** Go's Request.Cookie(name).Value: the first well-formed cookie of that name, quotes removed. */
export function cookieValue(header: string | string[] | undefined, name: string): string {
  if (header === undefined) return '';
  const lines = typeof header === 'string' ? [header] : header;
  for (const line of lines) {
    let start = 0;
    while (start <= line.length) {
      let end = line.indexOf(';', start);
      if (end < 0) end = line.length;
      const part = line.slice(start, end).trim();
      start = end + 1;
      const eq = part.indexOf('=');
      const key = (eq < 0 ? part : part.slice(0, eq)).trim();
      if (key !== name || key === '') continue;
      let value = eq < 0 ? '' : part.slice(eq + 1);
      if (value.length > 1 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (validCookieValue(value)) return value;
    }
  }
  return '';
}

function validCookieValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x3b || c === 0x5c) return false;
  }
  return true;
}

function hasEscapes(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 || c === 0x2b) return true;
  }
  return false;
}

/** Go's URL.Query().Get(name) on a raw query: the first value, decoded; pairs containing `;` are skipped. */
export function queryArg(rawQuery: string, name: string): string {
  let start = 0;
  while (start < rawQuery.length) {
    let end = rawQuery.indexOf('&', start);
    if (end < 0) end = rawQuery.length;
    const from = start;
    start = end + 1;
    if (end === from) continue;
    const semi = rawQuery.indexOf(';', from);
    if (semi >= 0 && semi < end) continue;
    let eq = rawQuery.indexOf('=', from);
    if (eq < 0 || eq > end) eq = end;
    if (hasEscapes(rawQuery, from, eq)) {
      if (queryUnescape(rawQuery.slice(from, eq)) !== name) continue;
    } else if (eq - from !== name.length || !rawQuery.startsWith(name, from)) continue;
    const value = eq < end ? queryUnescape(rawQuery.slice(eq + 1, end)) : '';
    if (value !== undefined) return value;
  }
  return '';
}
