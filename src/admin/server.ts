// The admin endpoint (-admin, default localhost:2019): metrics, upstreams, tunnels, the loaded config, and
// POST /load. It runs where everything can be seen: the primary with workers, else the one process. It is
// a plain node:http server of its own, never one of the sites' listeners.
import http from '../core/node-http.js';
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { caddyfileToJson, jsonToCaddyfile } from '../caddyfile/index.js';
import type { Logger } from '../core/logger.js';
import { renderText } from '../core/metrics/registry.js';
import type { Runtime } from '../runtime.js';
import { allowedHosts, isWildcard, originHost, type AdminAddress } from './address.js';
import { concatStatus, mergeUpstreams, type Reports } from './reports.js';

/** The longest Caddyfile POST /load takes. */
const MAX_LOAD_BYTES = 1 << 20;

export interface AdminOptions {
  address: AdminAddress;
  log: Logger;
  runtime: Pick<Runtime, 'running' | 'reload'>;
  reports: Reports;
  /** Where a Caddyfile given without a file resolves its imports (the process's working directory). */
  cwd: string;
}

class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export class AdminServer {
  private readonly server: HttpServer;
  private hosts = new Set<string>();
  private readonly checkHost: boolean;
  private readonly routes: ReadonlyMap<string, { method: 'GET' | 'POST'; run: Route }>;

  constructor(private readonly options: AdminOptions) {
    this.checkHost = !isWildcard(options.address.host);
    this.routes = new Map([
      ['/', { method: 'GET', run: (_req, res) => this.index(res) }],
      ['/metrics', { method: 'GET', run: (_req, res) => this.metrics(res) }],
      ['/upstreams', { method: 'GET', run: (_req, res) => this.upstreams(res) }],
      // Caddy 2's path for the same list, for tools that already read it.
      ['/reverse_proxy/upstreams', { method: 'GET', run: (_req, res) => this.upstreams(res) }],
      ['/tunnels', { method: 'GET', run: (_req, res) => this.tunnels(res) }],
      ['/config', { method: 'GET', run: (_req, res) => this.config(res) }],
      ['/load', { method: 'POST', run: (req, res) => this.load(req, res) }],
    ]);
    this.server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const e = err instanceof AdminError ? err : new AdminError(500, (err as Error).message);
        if (e.status >= 500) options.log.error({ err }, 'admin request failed');
        if (!res.headersSent) sendJson(res, e.status, { error: e.message }, e.headers);
        else res.destroy();
      });
    });
  }

  /** Binds; a port in use (or any bind error) is a warning and gives false: the server serves on. */
  async listen(): Promise<boolean> {
    const { address, log } = this.options;
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
          this.server.off('error', reject);
          this.server.on('error', (err) => log.error({ err }, 'admin endpoint error'));
          resolve();
        });
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.message;
      log.warn(
        { address: address.display },
        `admin endpoint not started: ${why} (choose another with -admin ADDR, or -admin off)`,
      );
      return false;
    }
    const port = this.port;
    this.hosts = allowedHosts(address, port);
    const shown = `${address.display.slice(0, address.display.lastIndexOf(':'))}:${port}`;
    log.info({ address: shown }, 'admin endpoint started');
    if (!this.checkHost)
      log.warn({ address: shown }, 'admin endpoint on every interface: Host is not checked');
    return true;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.refuseForeign(req);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const route = this.routes.get(q < 0 ? url : url.slice(0, q));
    if (!route) throw new AdminError(404, `no such admin path: ${url}`);
    const method = req.method === 'HEAD' && route.method === 'GET' ? 'GET' : req.method;
    if (method !== route.method) {
      throw new AdminError(405, `method ${req.method} not allowed`, {
        allow: route.method === 'GET' ? 'GET, HEAD' : route.method,
      });
    }
    await route.run(req, res);
  }

  /** DNS rebinding and cross-site requests: a Host that is not ours, a browser Origin from elsewhere. */
  private refuseForeign(req: IncomingMessage): void {
    const host = (req.headers.host ?? '').toLowerCase();
    if (this.checkHost && !this.hosts.has(host)) throw new AdminError(403, `host not allowed: ${host}`);
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const from = originHost(origin);
      if (!from || !this.hosts.has(from)) throw new AdminError(403, `origin not allowed: ${origin}`);
    }
    // WebSockets are not bound by a browser's same-origin rules; the endpoint has none to offer.
    if (req.headers.upgrade !== undefined) throw new AdminError(400, 'upgrades are not served here');
  }

  private async index(res: ServerResponse): Promise<void> {
    sendJson(res, 200, { endpoints: [...this.routes].map(([p, r]) => `${r.method} ${p}`) });
  }

  private async metrics(res: ServerResponse): Promise<void> {
    const text = renderText(await this.options.reports.metrics());
    res.writeHead(200, {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private async upstreams(res: ServerResponse): Promise<void> {
    sendJson(res, 200, mergeUpstreams(await this.options.reports.gather()));
  }

  private async tunnels(res: ServerResponse): Promise<void> {
    sendJson(res, 200, concatStatus(await this.options.reports.gather(), 'tunnels'));
  }

  private async config(res: ServerResponse): Promise<void> {
    const running = this.options.runtime.running;
    if (!running) throw new AdminError(503, 'no config loaded yet');
    const { input, fingerprint } = running.config;
    const baseDir = input.baseDir ?? (input.path ? path.dirname(input.path) : this.options.cwd);
    let json: string;
    try {
      json = caddyfileToJson(input.text, input.name, { baseDir });
    } catch (err) {
      throw new AdminError(500, `converting the loaded Caddyfile: ${(err as Error).message}`);
    }
    // The converter's JSON is spliced in as it prints it (Go's escaping), not re-encoded.
    const head = JSON.stringify({ file: input.name, fingerprint, loaded: running.loadedAt.toISOString() });
    sendRaw(res, 200, `${head.slice(0, -1)},"config":${json}}\n`);
  }

  /** A Caddyfile (or its JSON form) in the body replaces the running one, as a reload on save would. */
  private async load(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const running = this.options.runtime.running;
    if (!running) throw new AdminError(503, 'no config loaded yet');
    let text = await readBody(req);
    if (/\bjson\b/i.test(req.headers['content-type'] ?? '')) {
      try {
        text = jsonToCaddyfile(text);
      } catch (err) {
        throw new AdminError(400, `Converting from JSON failed: ${(err as Error).message}`);
      }
    }
    // Under the running Caddyfile's name and directory: errors read as they would for a save of that file.
    const input = { ...running.config.input, text };
    const force = /\bmust-revalidate\b/i.test(String(req.headers['cache-control'] ?? ''));
    const result = await this.options.runtime.reload({ force, trigger: 'POST /load', input });
    // Not changed and not ok: nothing was tried (the server is stopping).
    if (!result.ok)
      throw new AdminError(result.changed ? 400 : 503, result.error?.message ?? 'reload failed');
    sendJson(res, 200, { status: result.changed ? 'reloaded' : 'unchanged' });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A body over the limit is read to its end (so the answer can be sent) but not kept.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_LOAD_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_LOAD_BYTES) reject(new AdminError(413, `the body is over ${MAX_LOAD_BYTES} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function sendRaw(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers?: Record<string, string>,
): void {
  sendRaw(res, status, `${JSON.stringify(value, null, 2)}\n`, headers);
}
