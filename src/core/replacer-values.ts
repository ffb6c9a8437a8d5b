// The built-in placeholder values of Caddy v1's replacer (httpserver/replacer.go), one getter per name.
// Getters run per request, so they avoid regexes and allocate little beyond their result.
import { hostname as osHostname } from 'node:os';
import type { RequestContext } from './context.js';
import { formatDuration } from './duration.js';
import {
  canonicalHeaderKey,
  cookieValue,
  escapeCrLf,
  formatCommonLogTime,
  formatIsoLocal,
  formatIsoUtc,
  queryArg,
  queryEscape,
  splitHostPort,
} from './replacer-format.js';
import { TLS_GETTERS } from './replacer-tls.js';

/** Produces one placeholder's value for a request; '' means "empty" (the template substitutes its empty value). */
export type Getter = (ctx: RequestContext) => string;

const empty: Getter = () => '';

// ---------------------------------------------------------------------------------------------------------------
// Host, URL and connection values

/** The Host the client asked for (`Host`, or `:authority` on HTTP/2), port included if sent. */
export function requestHost(ctx: RequestContext): string {
  const h = ctx.req.headers;
  return h.host ?? (h[':authority'] as string | undefined) ?? '';
}

/** The client's IP address without port; an IPv4-mapped IPv6 address is shown as IPv4. */
export function remoteIp(ctx: RequestContext): string {
  const addr = ctx.req.socket.remoteAddress ?? '';
  return addr.startsWith('::ffff:') && addr.indexOf('.') > 0 ? addr.slice(7) : addr;
}

/** Go's url.URL.RequestURI of the original request target: the path and query, never a fragment or authority. */
function originalRequestUri(ctx: RequestContext): string {
  let uri = ctx.originalUri;
  const hash = uri.indexOf('#');
  if (hash >= 0) uri = uri.slice(0, hash);
  if (uri.charCodeAt(0) !== 0x2f /* / */ && uri !== '*') {
    // absolute-form (`http://host/path?q`, sent to proxies): drop scheme and authority
    const scheme = uri.indexOf('://');
    if (scheme > 0) {
      const slash = uri.indexOf('/', scheme + 3);
      const q = uri.indexOf('?', scheme + 3);
      uri = slash >= 0 && (q < 0 || slash < q) ? uri.slice(slash) : q >= 0 ? '/' + uri.slice(q) : '/';
    }
  }
  return uri;
}

const SERVER_HOSTNAME = { value: undefined as string | undefined };

function serverHostname(): string {
  if (SERVER_HOSTNAME.value === undefined) {
    try {
      SERVER_HOSTNAME.value = osHostname();
    } catch {
      SERVER_HOSTNAME.value = '';
    }
  }
  return SERVER_HOSTNAME.value;
}

/** A clock string that is formatted at most once per second (formatting is the costly part). */
function perSecond(format: (d: Date) => string): Getter {
  let sec = NaN;
  let text = '';
  return () => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== sec) {
      text = format(new Date(now * 1000));
      sec = now;
    }
    return text;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Response values

/** Elapsed time since the request arrived, in integer nanoseconds. */
function elapsedNanos(ctx: RequestContext): number {
  const ns = Math.round((performance.now() - ctx.startTime) * 1e6);
  return ns > 0 ? ns : 0;
}

/** Caddy's roundDuration: to the millisecond from 1ms up, else to the microsecond (halves round up). */
export function roundLatencyNanos(ns: number): number {
  const unit = ns >= 1e6 ? 1e6 : ns >= 1e3 ? 1e3 : 1;
  const m = ns % unit;
  return m + m < unit ? ns - m : ns + unit - m;
}

function headerValue(v: number | string | readonly string[] | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return v.join(',');
}

// ---------------------------------------------------------------------------------------------------------------
// The request dump (`{request}`): Go's httputil.DumpRequest(r, false) with CR/LF shown as \r \n

const DUMP_EXCLUDED = new Set(['host', 'transfer-encoding', 'trailer']);

function requestDump(ctx: RequestContext): string {
  const req = ctx.req;
  let out = `${req.method ?? 'GET'} ${ctx.originalUri} HTTP/${req.httpVersionMajor}.${req.httpVersionMinor}\\r\\n`;
  const host = requestHost(ctx);
  const absolute = ctx.originalUri.startsWith('http://') || ctx.originalUri.startsWith('https://');
  if (!absolute && host) out += `Host: ${host}\\r\\n`;
  const groups = new Map<string, string[]>();
  let transferEncoding = '';
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 0x3a /* : */) continue; // HTTP/2 pseudo-header
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') transferEncoding += (transferEncoding ? ',' : '') + raw[i + 1];
    if (DUMP_EXCLUDED.has(lower)) continue;
    const key = canonicalHeaderKey(name);
    const list = groups.get(key);
    if (list) list.push(raw[i + 1]);
    else groups.set(key, [raw[i + 1]]);
  }
  if (transferEncoding) out += `Transfer-Encoding: ${transferEncoding}\\r\\n`;
  for (const key of [...groups.keys()].sort()) {
    for (const value of groups.get(key)!) out += `${key}: ${escapeCrLf(value)}\\r\\n`;
  }
  return out + '\\r\\n';
}

// ---------------------------------------------------------------------------------------------------------------
// The table

const BUILTINS: ReadonlyMap<string, Getter> = new Map<string, Getter>([
  ['method', (ctx) => ctx.req.method ?? ''],
  ['scheme', (ctx) => (ctx.isTls ? 'https' : 'http')],
  ['host', requestHost],
  [
    'hostonly',
    (ctx) => {
      const host = requestHost(ctx);
      const hp = splitHostPort(host);
      return hp ? hp[0] : host;
    },
  ],
  ['hostname', serverHostname],
  ['path', (ctx) => ctx.originalPath],
  ['path_escaped', (ctx) => queryEscape(ctx.originalPath)],
  ['rewrite_path', (ctx) => ctx.path],
  ['rewrite_path_escaped', (ctx) => queryEscape(ctx.path)],
  ['query', (ctx) => ctx.originalQuery],
  ['query_escaped', (ctx) => queryEscape(ctx.originalQuery)],
  ['uri', originalRequestUri],
  ['uri_escaped', (ctx) => queryEscape(originalRequestUri(ctx))],
  ['rewrite_uri', (ctx) => ctx.uri],
  ['rewrite_uri_escaped', (ctx) => queryEscape(ctx.uri)],
  // Clients never send the fragment; Caddy's value is only ever non-empty for odd absolute-form targets.
  ['fragment', empty],
  ['dir', (ctx) => ctx.path.slice(0, ctx.path.lastIndexOf('/') + 1)],
  ['file', (ctx) => ctx.path.slice(ctx.path.lastIndexOf('/') + 1)],
  ['proto', (ctx) => `HTTP/${ctx.req.httpVersion}`],
  ['remote', remoteIp],
  [
    'port',
    (ctx) => {
      const port = ctx.req.socket.remotePort;
      return port === undefined ? '' : String(port);
    },
  ],
  [
    'server_port',
    (ctx) => {
      const hp = splitHostPort(requestHost(ctx));
      return hp ? hp[1] : ctx.isTls ? '443' : '80';
    },
  ],
  ['when', perSecond(formatCommonLogTime)],
  ['when_iso_local', perSecond(formatIsoLocal)],
  ['when_iso', perSecond(formatIsoUtc)],
  ['when_unix', () => String(Math.floor(Date.now() / 1000))],
  ['when_unix_ms', () => String(Date.now())],
  ['status', (ctx) => String(ctx.res.statusCode || 200)],
  ['size', (ctx) => String(ctx.bytesWritten)],
  ['latency', (ctx) => formatDuration(roundLatencyNanos(elapsedNanos(ctx)) / 1e6)],
  ['latency_ms', (ctx) => String(Math.floor(elapsedNanos(ctx) / 1e6))],
  ['request', requestDump],
  // The body is captured by the log directive (POST/PUT with a JSON or XML type, capped at 100 KiB), which sets
  // the `request_body` var; without it there is nothing to show.
  ['request_body', empty],
  ['request_id', empty], // set as a var by whoever assigns request ids
  ['mitm', () => 'unknown'], // no TLS ClientHello heuristics
  ...TLS_GETTERS,
  ['user', (ctx) => ctx.user],
  ['upstream', empty], // set as a var by proxy
]);

/** Parses the N of `labelN` like Go's strconv.Atoi (optional sign, decimal digits); NaN otherwise. */
function labelIndex(s: string): number {
  let i = s[0] === '+' || s[0] === '-' ? 1 : 0;
  if (i === s.length) return NaN;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return NaN;
  }
  return Number(s);
}

/**
 * Whether a placeholder name means something: a built-in, a header, cookie or query form with a name, a
 * `labelN`, or a rewrite capture (`{1}`…). A directive can refuse the rest at load time (an unknown name
 * would otherwise render as empty forever).
 */
export function isKnownPlaceholder(name: string): boolean {
  if (BUILTINS.has(name)) return true;
  if (name.length > 1 && '><~?'.includes(name[0])) return true;
  if (name.startsWith('label')) {
    const n = labelIndex(name.slice(5));
    return n >= 1 && Number.isSafeInteger(n);
  }
  return /^\d+$/.test(name);
}

/**
 * The built-in getter for a placeholder name (the text between the braces, escapes removed). Unknown names get
 * a getter that returns ''. Custom values (ctx.vars) are not consulted here: the template checks them first.
 */
export function builtinGetter(name: string): Getter {
  const fixed = BUILTINS.get(name);
  if (fixed) return fixed;
  const rest = name.slice(1);
  switch (name[0]) {
    case '>': {
      const want = rest.toLowerCase();
      return (ctx) => {
        const distinct = ctx.req.headersDistinct as NodeJS.Dict<string[]> | undefined;
        if (distinct) return distinct[want]?.join(',') ?? '';
        return headerValue(ctx.req.headers[want]);
      };
    }
    case '<':
      return rest ? (ctx) => headerValue(ctx.res.getHeader(rest)) : empty;
    case '~':
      return (ctx) => cookieValue(ctx.req.headers.cookie, rest);
    case '?':
      return (ctx) => queryArg(ctx.query, rest);
  }
  if (name.startsWith('label')) {
    const n = labelIndex(name.slice(5));
    if (!(n >= 1) || !Number.isSafeInteger(n)) return empty;
    return (ctx) => {
      const host = requestHost(ctx);
      let start = 0;
      for (let k = 1; k < n; k++) {
        const dot = host.indexOf('.', start);
        if (dot < 0) return '';
        start = dot + 1;
      }
      const dot = host.indexOf('.', start);
      return dot < 0 ? host.slice(start) : host.slice(start, dot);
    };
  }
  return empty;
}
