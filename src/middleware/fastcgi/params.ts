// The CGI/1.1 parameters sent with each request, as Caddy v1's buildEnv makes them (reference 4.19), with
// two deliberate fixes: without `split` the whole path is the script (v1 made SCRIPT_NAME empty, #2212),
// and no HTTP_PROXY is ever sent (httpoxy).
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { RequestContext } from '../../core/context.js';
import { clientIp } from '../../core/forwarded.js';
import type { Template } from '../../core/replacer.js';

/** What buildParams needs from the rule. */
export interface ParamRule {
  /** Absolute document root for SCRIPT_FILENAME and DOCUMENT_ROOT. */
  readonly root: string;
  readonly split: string;
  readonly caseSensitive: boolean;
  readonly env: readonly (readonly [string, Template])[];
  readonly software: string;
}

/** Where the script name ends in fpath: just after the first `split` (or the whole path without split). */
export function splitEnd(fpath: string, split: string, caseSensitive: boolean): number {
  if (split === '') return fpath.length;
  const i = caseSensitive ? fpath.indexOf(split) : fpath.toLowerCase().indexOf(split.toLowerCase());
  return i < 0 ? -1 : i + split.length;
}

/** Parameter names of the header names seen (a client sends the same few): bounded, then left as it is. */
const cgiNames = new Map<string, string>();
const MAX_CGI_NAMES = 256;

/** `content-type` → `HTTP_CONTENT_TYPE`: upper case, `-` and space become `_`. */
function cgiHeaderName(name: string): string {
  let out = cgiNames.get(name);
  if (out === undefined) {
    out = makeCgiHeaderName(name);
    if (cgiNames.size < MAX_CGI_NAMES) cgiNames.set(name, out);
  }
  return out;
}

function makeCgiHeaderName(name: string): string {
  let out = 'HTTP_';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2d || c === 0x20) out += '_';
    else if (c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 32);
    else out += name[i];
  }
  return out;
}

/** The last script's SCRIPT_FILENAME: path.join normalizes, and a site runs the same script again and again. */
let lastRoot = '';
let lastScript = '';
let lastFilename = '';

function scriptFilename(root: string, scriptName: string): string {
  if (root !== lastRoot || scriptName !== lastScript) {
    lastFilename = path.join(root, scriptName);
    lastRoot = root;
    lastScript = scriptName;
  }
  return lastFilename;
}

/**
 * A request's name-value pairs in order, kept as two arrays (a Map of tuples, then iterated into tuples
 * again, cost more than encoding them). A name set again keeps its place and takes the new value, as in a
 * Map: user variables override the built-ins, request headers override both.
 */
export class ParamList {
  readonly names: string[] = [];
  readonly values: string[] = [];
  /** Where each HTTP_* name is, made when the first request header is set (see setHeader). */
  private httpIndex: Map<string, number> | undefined;

  /** Appends a pair whose name is not in the list (the built-ins, which are distinct). */
  add(name: string, value: string): void {
    this.names.push(name);
    this.values.push(value);
  }

  /** Sets a user variable: few, so a scan finds one that overrides a built-in. */
  set(name: string, value: string): void {
    const i = this.names.indexOf(name);
    if (i >= 0) this.values[i] = value;
    else this.add(name, value);
  }

  /**
   * Sets a request header's HTTP_* parameter. Only names starting with HTTP_ can be overridden by one:
   * HTTP_HOST, user variables named so, and earlier headers (`X-A` and `X_A` are both HTTP_X_A).
   */
  setHeader(name: string, value: string): void {
    let index = this.httpIndex;
    if (!index) {
      index = this.httpIndex = new Map();
      for (let i = 0; i < this.names.length; i++)
        if (this.names[i].startsWith('HTTP_')) index.set(this.names[i], i);
    }
    const i = index.get(name);
    if (i !== undefined) {
      this.values[i] = value;
      return;
    }
    index.set(name, this.names.length);
    this.add(name, value);
  }
}

/**
 * The parameters for one request. `fpath` is the script path (the current, possibly rewritten, path, or
 * the index file a directory resolved to); `end` is splitEnd(fpath).
 */
export function buildParams(
  ctx: RequestContext,
  rule: ParamRule,
  fpath: string,
  end: number,
  bodyLength: string,
): ParamList {
  const req = ctx.req;
  // The remote address split the way Go's RemoteAddr split does (IP without brackets, port).
  const socket = req.socket;
  const ip = clientIp(socket.remoteAddress);
  const port = socket.remotePort === undefined ? '' : String(socket.remotePort);
  const docUri = fpath.slice(0, end);
  const pathInfo = fpath.slice(end);
  const scriptName = docUri;
  const address = ctx.site.config.address;
  const prefix = address.path && address.path !== '/' ? address.path : '';
  const method = (req.method ?? 'GET').toUpperCase();
  let contentType = knownHeader(ctx, 'content-type');
  if (contentType === '' && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS')
    contentType = 'application/x-www-form-urlencoded';

  const p = new ParamList();
  p.add('AUTH_TYPE', '');
  p.add('CONTENT_LENGTH', bodyLength);
  p.add('CONTENT_TYPE', contentType);
  p.add('GATEWAY_INTERFACE', 'CGI/1.1');
  p.add('PATH_INFO', pathInfo);
  p.add('QUERY_STRING', ctx.query);
  p.add('REMOTE_ADDR', ip);
  p.add('REMOTE_HOST', ip);
  p.add('REMOTE_PORT', port);
  p.add('REMOTE_IDENT', '');
  p.add('REMOTE_USER', ctx.user);
  p.add('REQUEST_METHOD', method);
  p.add('REQUEST_SCHEME', ctx.isTls ? 'https' : 'http');
  p.add('SERVER_NAME', address.host);
  p.add('SERVER_PORT', address.port);
  p.add('SERVER_PROTOCOL', req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`);
  p.add('SERVER_SOFTWARE', rule.software);
  p.add('DOCUMENT_ROOT', rule.root);
  p.add('DOCUMENT_URI', docUri);
  p.add('HTTP_HOST', knownHeader(ctx, 'host'));
  p.add('REQUEST_URI', ctx.originalUri);
  p.add('SCRIPT_FILENAME', scriptFilename(rule.root, scriptName));
  p.add('SCRIPT_NAME', prefix ? path.posix.join(prefix, scriptName) : scriptName);
  if (pathInfo !== '') p.add('PATH_TRANSLATED', path.join(rule.root, pathInfo));
  if (ctx.isTls) {
    const tls = req.socket as TLSSocket;
    p.add('HTTPS', 'on');
    const protocol = tls.getProtocol();
    if (protocol) p.add('SSL_PROTOCOL', protocol);
    const cipher = tls.getCipher();
    if (cipher) p.add('SSL_CIPHER', cipher.name);
  }
  // User variables override the built-ins, and request headers override them (Caddy's order).
  for (const [name, value] of rule.env) p.set(name, value.render(ctx));
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    // httpoxy (CVE-2016-5385): a `Proxy:` request header must never become HTTP_PROXY. HTTP/2 pseudo-headers
    // (`:authority`, …) are not headers; HTTP_HOST comes from Host, which the listener sets from :authority.
    // A repeated header sets its parameter again, to the same joined value, in the same place.
    if (lower === 'proxy' || lower.charCodeAt(0) === 0x3a) continue;
    p.setHeader(cgiHeaderName(lower), header(ctx, lower));
  }
  return p;
}

/**
 * A request header's value, repeated values joined with `, ` (as Caddy). The name comes from the raw
 * header list, so it may be one that Node leaves out of `req.headers` (`__proto__`): it is looked up as
 * the header's own entry, never as something the object inherits. `headersDistinct` is read only for such
 * a name: Node builds it on first use, from every header of the request.
 */
function header(ctx: RequestContext, name: string): string {
  if (Object.hasOwn(ctx.req.headers, name)) return knownHeader(ctx, name);
  // An HTTP/2 request has no headersDistinct.
  const distinct = ctx.req.headersDistinct as NodeJS.Dict<string[]> | undefined;
  return distinct?.[name]?.join(', ') ?? '';
}

/** The value of a header that Node keeps in `req.headers` when present (a lower-case name we chose). */
function knownHeader(ctx: RequestContext, name: string): string {
  const v = Object.hasOwn(ctx.req.headers, name) ? ctx.req.headers[name] : undefined;
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(', ') : v;
}
