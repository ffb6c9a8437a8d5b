// The inspector's HTTP server: the page, ngrok's agent API, a live event stream for the page, and the bodies
// as the page shows them. On loopback unless the user names another address; even there it only answers
// requests for its own host names (no DNS rebinding) and refuses cross-site writes (Origin).
import http from '../../core/node-http.js';
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TunnelClient } from '../client.js';
import { API_REQUESTS, API_TUNNELS, ngrokError, ngrokRequest, ngrokTunnel } from './api.js';
import { shownBody } from './bodies.js';
import type { CaptureEvent, CaptureStore } from './capture.js';
import { INSPECTOR_PAGE } from './page.js';
import { replay, ReplayError, type ReplayEdits } from './replay.js';

/** Where to listen: a fixed address, or the first free port of a range (the default 4040-4050). */
export interface InspectorAddress {
  host: string;
  port: number;
  /** Try the following ports up to this one when `port` is taken. */
  lastPort?: number;
}

export interface Inspector {
  url: string;
  /** The tunnel's state changed (online, latency, traffic): the page hears of it within a second. */
  changed(): void;
  close(): Promise<void>;
}

const MAX_API_BODY = 4 * 1024 * 1024;
const EVENTS_PATH = '/api/events';

export function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Binds the first free port of the address; undefined when none is. */
async function listen(server: HttpServer, a: InspectorAddress): Promise<AddressInfo | undefined> {
  for (let port = a.port; port <= (a.lastPort ?? a.port); port++) {
    const bound = await new Promise<boolean>((resolve) => {
      const onError = () => resolve(false);
      server.once('error', onError);
      server.listen({ host: a.host, port, exclusive: true }, () => {
        server.off('error', onError);
        resolve(true);
      });
    });
    if (bound) return server.address() as AddressInfo;
  }
  return undefined;
}

export async function startInspector(
  address: InspectorAddress,
  client: TunnelClient,
  capture: CaptureStore | undefined,
): Promise<Inspector | undefined> {
  const events = new Set<ServerResponse>();
  const server = http.createServer((req, res) => {
    void route(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, ngrokError(500, (err as Error).message));
      else res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const bound = await listen(server, address);
  if (!bound) return undefined;
  const hostPort = (h: string) => `${h.includes(':') ? `[${h}]` : h}:${bound.port}`;
  const allowedHosts = new Set([hostPort(address.host), hostPort(bound.address)]);
  const loopback = isLoopbackAddress(bound.address);
  if (loopback) for (const h of ['localhost', '127.0.0.1', '::1']) allowedHosts.add(hostPort(h));

  const unsubscribe = capture?.subscribe((event) => broadcast(events, event));
  // The tunnel's state (online, latency, traffic) at most once a second to the page.
  let tunnelDirty = false;
  const tunnelTimer = setInterval(() => {
    if (!tunnelDirty || events.size === 0) return;
    tunnelDirty = false;
    send(events, 'tunnel', ngrokTunnel(client, capture !== undefined));
  }, 1000);
  tunnelTimer.unref();

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only our own names: a page elsewhere that re-points its DNS at 127.0.0.1 gets nothing.
    if (loopback && !allowedHosts.has(String(req.headers.host ?? ''))) {
      json(res, 403, ngrokError(403, 'unknown Host for the inspector'));
      return;
    }
    const origin = req.headers.origin;
    if (req.method !== 'GET' && req.method !== 'HEAD' && origin && !sameOrigin(origin, req)) {
      json(res, 403, ngrokError(403, 'cross-site requests are refused'));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://inspector.invalid');
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (p === '/' || p === '/inspect/http') {
      if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET');
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        // Everything is inline; nothing may load from anywhere else.
        'content-security-policy':
          "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        'x-content-type-options': 'nosniff',
      });
      res.end(method === 'HEAD' ? undefined : INSPECTOR_PAGE);
      return;
    }
    if (p === '/api') return json(res, 200, { uri: '/api', tunnels: API_TUNNELS, requests: API_REQUESTS });
    if (p === API_TUNNELS) {
      if (method !== 'GET') return notAllowed(res, 'GET', 'starting tunnels is not supported');
      return json(res, 200, { tunnels: [ngrokTunnel(client, capture !== undefined)], uri: API_TUNNELS });
    }
    if (p.startsWith(`${API_TUNNELS}/`)) {
      if (method !== 'GET') return notAllowed(res, 'GET', 'stopping tunnels is not supported');
      if (decodeURIComponent(p.slice(API_TUNNELS.length + 1)) !== client.o.name) {
        return json(res, 404, ngrokError(404, 'tunnel not found'));
      }
      return json(res, 200, ngrokTunnel(client, capture !== undefined));
    }
    if (p === EVENTS_PATH) return openEvents(req, res);
    if (p === API_REQUESTS) return requests(req, res, url, method);
    const m = /^\/api\/requests\/http\/([0-9a-f]{16})(?:\/(request|response)\/body)?$/.exec(p);
    if (m) {
      const e = capture?.get(m[1]);
      if (!e) return json(res, 404, ngrokError(404, 'request not found'));
      if (method !== 'GET') return notAllowed(res, 'GET');
      if (!m[2]) return json(res, 200, ngrokRequest(e, true));
      const part = m[2] === 'request' ? e.request : e.response;
      if (!part) return json(res, 404, ngrokError(404, 'no response yet'));
      const shown = await shownBody(part.body, part.headers['content-encoding']);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': shown.bytes.length,
        'cache-control': 'no-store',
        'x-body-decoded': shown.decoded ?? '',
        'x-body-cut': shown.cut ? '1' : '0',
        'x-body-error': shown.error ?? '',
      });
      res.end(shown.bytes);
      return;
    }
    json(res, 404, ngrokError(404, 'not found'));
  }

  async function requests(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    method: string,
  ): Promise<void> {
    if (method === 'GET') {
      const limit = Number(url.searchParams.get('limit') ?? '') || Infinity;
      const tunnel = url.searchParams.get('tunnel_name');
      const list = (capture?.list() ?? []).filter((e) => !tunnel || e.tunnel === tunnel).slice(0, limit);
      return json(res, 200, { uri: API_REQUESTS, requests: list.map((e) => ngrokRequest(e, false)) });
    }
    if (method === 'DELETE') {
      capture?.clear();
      res.writeHead(204).end();
      return;
    }
    if (method !== 'POST') return notAllowed(res, 'GET, POST, DELETE');
    if (!capture || client.o.target.proto !== 'http') {
      return json(res, 409, ngrokError(409, 'this tunnel captures no HTTP requests'));
    }
    let params: Record<string, unknown>;
    try {
      params = await readParams(req);
    } catch (err) {
      return json(res, 400, ngrokError(400, (err as Error).message));
    }
    const original = typeof params.id === 'string' ? capture.get(params.id) : undefined;
    if (!original) return json(res, 404, ngrokError(404, 'request not found'));
    try {
      const id = replay(original, editsOf(params), client.httpTarget, capture);
      res.writeHead(204, { location: `${API_REQUESTS}/${id}` }).end();
    } catch (err) {
      if (!(err instanceof ReplayError)) throw err;
      json(res, err.status, ngrokError(err.status, err.message));
    }
  }

  function openEvents(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(`event: tunnel\ndata: ${JSON.stringify(ngrokTunnel(client, capture !== undefined))}\n\n`);
    events.add(res);
    req.once('close', () => events.delete(res));
  }

  return {
    url: `http://${hostPort(bound.address)}`,
    changed() {
      tunnelDirty = true;
    },
    async close() {
      clearInterval(tunnelTimer);
      unsubscribe?.();
      for (const res of events) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function broadcast(events: Set<ServerResponse>, event: CaptureEvent): void {
  if (events.size === 0) return;
  if (event.kind === 'clear') send(events, 'clear', {});
  else if (event.kind === 'evict') send(events, 'evict', { id: event.id });
  else send(events, 'exchange', ngrokRequest(event.exchange, false));
}

function send(events: Set<ServerResponse>, name: string, data: unknown): void {
  const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  for (const res of events) res.write(frame);
}

function sameOrigin(origin: string | string[], req: IncomingMessage): boolean {
  try {
    return new URL(String(origin)).host === req.headers.host;
  } catch {
    return false;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function notAllowed(res: ServerResponse, allow: string, why = 'method not allowed'): void {
  res.setHeader('allow', allow);
  json(res, 405, ngrokError(405, why));
}

/** The POST's parameters: JSON (as ngrok's current API), or a form (as its older one and `curl -d id=…`). */
async function readParams(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_API_BODY) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (String(req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    const parsed: unknown = JSON.parse(text || '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new Error('the body must be a JSON object, e.g. {"id": "…"}');
}

/** Edit-and-replay fields (our addition to ngrok's `id`): method, uri, headers, body or body_base64. */
function editsOf(p: Record<string, unknown>): ReplayEdits {
  const edits: ReplayEdits = {};
  if (typeof p.method === 'string' && p.method) edits.method = p.method;
  if (typeof p.uri === 'string' && p.uri) edits.uri = p.uri;
  if (p.headers && typeof p.headers === 'object' && !Array.isArray(p.headers)) {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(p.headers as Record<string, unknown>)) {
      headers[k] = Array.isArray(v) ? v.map(String) : String(v);
    }
    edits.headers = headers;
  }
  if (typeof p.body_base64 === 'string') edits.body = Buffer.from(p.body_base64, 'base64');
  else if (typeof p.body === 'string') edits.body = Buffer.from(p.body, 'utf8');
  return edits;
}
