// Everything a request carries through the chain. One object per request; no globals.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Site } from './site.js';
import { HttpError } from './errors.js';
import { bodyBytesSent, type HttpResponse } from './response.js';
import { silentLogger, type Logger } from './logger.js';

const SILENT = silentLogger();
import type { UpgradeRequest } from './upgrade.js';

/** Splits `path?query` without URL parsing (fast, and keeps the raw escaped form). */
export function splitUri(uri: string): { rawPath: string; rawQuery: string } {
  const q = uri.indexOf('?');
  return { rawPath: rawPathOf(uri, q), rawQuery: q < 0 ? '' : uri.slice(q + 1) };
}

/** The path part of a request target (no query, no fragment); `q` is the index of `?` or -1. */
export function rawPathOf(uri: string, q = uri.indexOf('?')): string {
  const rawPath = q < 0 ? uri : uri.slice(0, q);
  const hash = rawPath.indexOf('#');
  return hash < 0 ? rawPath : rawPath.slice(0, hash);
}

/**
 * Absolute-form request targets (`GET http://host/p?q`, what proxies send) become origin-form: the target
 * `/p?q` and the authority `host`, which replaces the Host header (RFC 9112 §3.2.2). Undefined if not one.
 */
export function parseAbsoluteForm(url: string): { target: string; authority: string } | undefined {
  const sep = url.indexOf('://');
  if (sep <= 0) return undefined;
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return undefined;
  let end = sep + 3;
  while (end < url.length && url[end] !== '/' && url[end] !== '?' && url[end] !== '#') end++;
  const authority = url.slice(sep + 3, end);
  if (!authority || authority.includes('@')) return undefined;
  const rest = url.slice(end);
  return { target: rest.startsWith('/') ? rest : `/${rest}`, authority };
}

/**
 * Percent-decodes a path. Malformed escapes and NUL bytes are a 400: such a path can name no file,
 * and letting it through invites confusion between layers.
 */
export function decodePath(rawPath: string): string {
  let decoded: string;
  if (rawPath.indexOf('%') < 0) decoded = rawPath;
  else {
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      throw new HttpError(400, 'malformed percent-encoding in path');
    }
  }
  if (decoded.indexOf('\0') >= 0) throw new HttpError(400, 'NUL byte in path');
  return decoded;
}

export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: HttpResponse;
  readonly site: Site;
  /** `performance.now()` when the request arrived. */
  readonly startTime: number;
  /** The request target exactly as the client sent it (`/blog/a%20b?x=1`). */
  readonly originalUri: string;
  /** Decoded original path, including any site path prefix (what `{path}` shows). */
  readonly originalPath: string;
  /** Raw original query, without `?`. */
  readonly originalQuery: string;

  /** Current (possibly rewritten) raw path, escaped, without the site prefix. */
  rawPath: string;
  /** Current decoded path, without the site prefix. Always starts with `/`. */
  path: string;
  /** Current raw query, without `?`. */
  query: string;
  /** The authenticated user (basicauth), `{user}`. */
  user = '';
  /** Custom placeholder values set by middleware (`upstream`, rewrite captures `1`..`n`, …). They win over built-ins. */
  get vars(): Map<string, string> {
    // Made on first use: most requests never set one, and this is the hot path.
    return (this.customVars ??= new Map());
  }
  private customVars: Map<string, string> | undefined;
  /** Body bytes written to the client so far (after compression), for `{size}`. */
  get bytesWritten(): number {
    return bodyBytesSent(this.res);
  }
  /** The `limits` body size for this request (Infinity: none). Read bodies through core/body.ts requestBody(). */
  maxBodyBytes = Infinity;
  /** The process log, for middleware that reports what a backend said (e.g. FastCGI stderr). Set by dispatch. */
  log: Logger = SILENT;
  /** Set for HTTP/1.1 Upgrade requests (WebSocket…): a directive may claim the socket (see core/upgrade.ts). */
  upgrade: UpgradeRequest | undefined;

  constructor(req: IncomingMessage, res: HttpResponse, site: Site, startTime: number) {
    this.req = req;
    this.res = res;
    this.site = site;
    this.startTime = startTime;
    this.originalUri = req.url ?? '/';
    const { rawPath, rawQuery } = splitUri(this.originalUri);
    this.originalQuery = rawQuery;
    this.originalPath = decodePath(rawPath);
    const prefix = site.config.address.path;
    const stripped = prefix && prefix !== '/' ? stripPrefix(rawPath, prefix) : rawPath;
    this.rawPath = stripped;
    this.path = stripped === rawPath ? this.originalPath : decodePath(stripped);
    this.query = rawQuery;
  }

  /** The current URI (`/path?query`), escaped, as a rewrite left it. */
  get uri(): string {
    return this.query ? `${this.rawPath}?${this.query}` : this.rawPath;
  }

  /** Replaces the current URI (rewrite). Throws HttpError(400) for an undecodable path. */
  setUri(uri: string): void {
    const { rawPath, rawQuery } = splitUri(uri);
    const p = rawPath.startsWith('/') ? rawPath : `/${rawPath}`;
    this.path = decodePath(p);
    this.rawPath = p;
    this.query = rawQuery;
  }

  get isTls(): boolean {
    return (this.req.socket as Partial<TLSSocket>).encrypted === true;
  }
}

/** Removes a site's path prefix from a raw request path; the result always starts with `/`. */
function stripPrefix(rawPath: string, prefix: string): string {
  if (
    rawPath.length >= prefix.length &&
    rawPath.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase()
  ) {
    const rest = rawPath.slice(prefix.length);
    return rest.startsWith('/') ? rest : `/${rest}`;
  }
  return rawPath;
}
