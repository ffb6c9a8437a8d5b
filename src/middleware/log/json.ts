// `log … { format json }`: one JSON object per request with Caddy 2's access log field names, so that tools
// reading Caddy 2's logs (GoAccess, Loki pipelines, jq one-liners) read ours. Credentials in headers are
// redacted as Caddy 2 does; JSON encoding also keeps a hostile header or URI from forging a line.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../core/context.js';
import { canonicalHeaderKey } from '../../core/replacer-format.js';
import { remoteIp } from '../../core/replacer-values.js';

const REDACTED = ['REDACTED'];
const SECRET_REQUEST_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/** Request headers as Go's http.Header: canonical names, every value in order. */
function requestHeaders(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 0x3a /* : */) continue; // HTTP/2 pseudo-header
    const key = canonicalHeaderKey(name);
    if (SECRET_REQUEST_HEADERS.has(name.toLowerCase())) out[key] = REDACTED;
    else (out[key] ??= []).push(raw[i + 1]);
  }
  return out;
}

function responseHeaders(headers: OutgoingHttpHeaders): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[canonicalHeaderKey(name)] =
      name === 'set-cookie' ? REDACTED : Array.isArray(value) ? value.map(String) : [String(value)];
  }
  return out;
}

/** The access log line of a finished request (without the newline: the writer adds it). */
export function jsonAccessLine(ctx: RequestContext): string {
  const { req, res } = ctx;
  const upstream = ctx.vars.get('upstream');
  const entry = {
    level: 'info',
    ts: Date.now() / 1000,
    logger: 'http.log.access',
    msg: 'handled request',
    request: {
      // `remote` is set by the log directive (masked when ipmask is on); `port` too.
      remote_ip: ctx.vars.get('remote') ?? remoteIp(ctx),
      remote_port: ctx.vars.get('port') ?? String(req.socket.remotePort ?? ''),
      proto: `HTTP/${req.httpVersion}`,
      method: req.method ?? '',
      host: req.headers.host ?? '',
      uri: ctx.originalUri,
      headers: requestHeaders(req.rawHeaders),
    },
    user_id: ctx.user,
    duration: (performance.now() - ctx.startTime) / 1000,
    size: ctx.bytesWritten,
    status: res.statusCode,
    resp_headers: responseHeaders(res.getHeaders()),
    ...(upstream !== undefined && { upstream }),
  };
  return JSON.stringify(entry);
}

/** The `format` value that selects this format. */
export const JSON_FORMAT = 'json';

export const jsonFormat = { render: jsonAccessLine };
