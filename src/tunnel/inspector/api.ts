// ngrok's agent API shapes (https://ngrok.com/docs/agent/api/): the same paths and JSON field names, so
// scripts written for ngrok's :4040 work. Fields ngrok does not have are additions (which its API stability
// rules allow): replay_of, error, upgrade, and the body sizes.
import { STATUS_CODES } from '../../core/node-http.js';
import type { OutgoingHttpHeaders } from 'node:http';
import { bodyBytes, isCut, type CapturedBody, type CapturedExchange } from './capture.js';
import { ngrokMetric } from '../metrics.js';
import type { TunnelClient } from '../client.js';

export const API_TUNNELS = '/api/tunnels';
export const API_REQUESTS = '/api/requests/http';

/** `content-type` → `Content-Type`, as Go (and ngrok) print header names. */
export function canonicalName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** Headers as ngrok lists them: canonical names, every value in an array. */
export function ngrokHeaders(headers: OutgoingHttpHeaders): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[canonicalName(name)] = Array.isArray(value) ? value.map(String) : [String(value)];
  }
  return out;
}

function headBlock(first: string, headers: OutgoingHttpHeaders): string {
  let head = `${first}\r\n`;
  for (const [name, values] of Object.entries(ngrokHeaders(headers))) {
    for (const v of values) head += `${name}: ${v}\r\n`;
  }
  return `${head}\r\n`;
}

/** The exchange as HTTP/1.1 bytes (head and the kept body), base64, as ngrok's `raw`. */
function raw(first: string, headers: OutgoingHttpHeaders, body: CapturedBody): string {
  return Buffer.concat([Buffer.from(headBlock(first, headers), 'latin1'), bodyBytes(body)]).toString(
    'base64',
  );
}

export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`.trim();
}

/** One captured request as ngrok's API gives it; `raw` bytes only in the detail (a list stays small). */
export function ngrokRequest(e: CapturedExchange, withRaw: boolean): Record<string, unknown> {
  const req = e.request;
  const res = e.response;
  return {
    uri: `${API_REQUESTS}/${e.id}`,
    id: e.id,
    tunnel_name: e.tunnel,
    remote_addr: e.remoteAddr,
    start: e.start.toISOString(),
    // Nanoseconds, as Go's time.Duration (and ngrok) count; 0 while in progress.
    duration: Math.round((e.durationMs ?? 0) * 1e6),
    request: {
      method: req.method,
      proto: 'HTTP/1.1',
      headers: ngrokHeaders(req.headers),
      uri: req.path,
      raw: withRaw ? raw(`${req.method} ${req.path} HTTP/1.1`, req.headers, req.body) : '',
      body_size: req.body.size,
      body_cut: isCut(req.body),
    },
    response: res
      ? {
          status: statusLine(res.status),
          status_code: res.status,
          proto: 'HTTP/1.1',
          headers: ngrokHeaders(res.headers),
          raw: withRaw ? raw(`HTTP/1.1 ${statusLine(res.status)}`, res.headers, res.body) : '',
          body_size: res.body.size,
          body_cut: isCut(res.body),
        }
      : null,
    ...(e.replayOf && { replay_of: e.replayOf }),
    ...(e.upgrade && { upgrade: e.upgrade }),
    ...(e.error && { error: e.error }),
    done: e.durationMs !== undefined,
  };
}

/** The one tunnel of this client as ngrok's tunnel resource, plus the server's traffic counters. */
export function ngrokTunnel(client: TunnelClient, inspecting: boolean): Record<string, unknown> {
  const o = client.o;
  const url = client.publicUrl;
  return {
    name: o.name,
    ID: o.name,
    uri: `${API_TUNNELS}/${encodeURIComponent(o.name)}`,
    public_url: url,
    proto: o.target.proto === 'tcp' ? 'tcp' : new URL(url).protocol.slice(0, -1),
    config: { addr: client.targetUrl, inspect: inspecting && o.target.proto === 'http' },
    metrics: { conns: ngrokMetric(client.conns, true), http: ngrokMetric(client.http, false) },
    status: client.state,
    latency_ms: client.latencyMs ?? null,
    traffic: client.traffic
      ? {
          since: client.traffic.since,
          requests: client.traffic.requests,
          connections: client.traffic.connections,
          bytes_in: client.traffic.bytesIn,
          bytes_out: client.traffic.bytesOut,
          open_streams: client.traffic.openStreams,
        }
      : null,
  };
}

/** ngrok's error body. */
export function ngrokError(status: number, msg: string): Record<string, unknown> {
  return { error_code: status, status_code: status, msg, details: {} };
}
