// What one listener's socket settings are when several sites share it: Node applies header size and
// timeouts per server, not per site (as Go's http.Server does for Caddy).
//
// - Header size: the LARGEST limit among the sites (a site without `limits header` counts as Node's
//   default), so no site rejects what it allows; each site with a smaller limit enforces its own in the
//   `limits` middleware after routing. (Caddy took the minimum, which let one site's limit break another's.)
// - Timeouts: as Caddy, for each kind the SMALLEST value among the sites that set it; `none` (0) is a value,
//   so it wins. Kinds no site sets take Caddy's defaults: idle 5m, read and write none; header 60s is our
//   deliberate difference (Caddy: none), a guard against clients that never finish their headers.
import http from './node-http.js';
import type { Server as HttpServer } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Site, TimeoutKind } from './site.js';

export interface ListenerSettings {
  maxHeaderSize: number;
  /** ms; 0 = none. */
  readonly timeouts: Readonly<Record<TimeoutKind, number>>;
}

export const DEFAULT_TIMEOUTS: Readonly<Record<TimeoutKind, number>> = {
  read: 0,
  header: 60_000,
  write: 0,
  idle: 5 * 60_000,
};

export function listenerSettings(sites: readonly Site[]): ListenerSettings {
  let maxHeaderSize = 0;
  const set: Partial<Record<TimeoutKind, number>> = {};
  for (const site of sites) {
    maxHeaderSize = Math.max(maxHeaderSize, site.config.maxHeaderBytes ?? http.maxHeaderSize);
    const t = site.config.timeouts;
    if (!t) continue;
    for (const kind of Object.keys(t) as TimeoutKind[]) {
      const v = t[kind]!;
      if (set[kind] === undefined || v < set[kind]) set[kind] = v;
    }
  }
  return {
    maxHeaderSize: maxHeaderSize || http.maxHeaderSize,
    timeouts: { ...DEFAULT_TIMEOUTS, ...set },
  };
}

/**
 * Applies settings to a server; safe to call again on reload (Node reads these per connection or per
 * check). `write` has no server setting: the listener arms a timer per request.
 */
export function applyListenerSettings(server: HttpServer | Http2SecureServer, s: ListenerSettings): void {
  const { read, header, idle } = s.timeouts;
  // Read by Node's HTTP parser for each new connection.
  // An HTTPS listener's HTTP/1.1 connections read these same fields of the http2 server.
  const h1 = server as Pick<HttpServer, 'requestTimeout' | 'headersTimeout' | 'keepAliveTimeout'> & {
    maxHeaderSize?: number;
  };
  h1.maxHeaderSize = s.maxHeaderSize;
  h1.requestTimeout = read;
  // Node wants the header deadline inside the request deadline.
  h1.headersTimeout = read > 0 && (header === 0 || header > read) ? read : header;
  // As Go: with no idle timeout, an idle connection waits as long as a read may take.
  h1.keepAliveTimeout = idle > 0 ? idle : read;
}
