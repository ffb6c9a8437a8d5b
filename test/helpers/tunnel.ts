// Fixtures for the tunnel tests: a local target (HTTP, SSE, WebSocket echo), the public nodecaddy, clients.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { WebSocketServer } from 'ws';
import { waitFor } from './http.js';
import { spawnNodecaddy, startNodecaddy, type Nodecaddy } from './process.js';

export const SECRET = 'test-secret-123';

/** `n` deterministic bytes, streamed in 64 KB chunks (never held whole). */
export function patternStream(n: number, seed = 1): Readable {
  let sent = 0;
  let counter = seed;
  return new Readable({
    read() {
      if (sent >= n) {
        this.push(null);
        return;
      }
      const size = Math.min(65536, n - sent);
      const chunk = Buffer.allocUnsafe(size);
      for (let i = 0; i + 4 <= size; i += 4)
        chunk.writeUInt32LE((counter = (counter * 1103515245 + 12345) >>> 0), i);
      for (let i = size - (size % 4); i < size; i++) chunk[i] = i & 0xff;
      sent += size;
      this.push(chunk);
    },
  });
}

export async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface Target {
  port: number;
  server: http.Server;
  /** Resolvers for the SSE stream's next event: the test releases events one at a time. */
  sseNext: ((data: string) => void)[];
  /** Request targets (`/path?query`) in the order they arrived. */
  seen: string[];
  /** Request targets whose response was cut (the connection closed) before it ended. */
  cut: string[];
  close(): Promise<void>;
}

/**
 * /echo → the body back (with the request's method, Host and forwarding headers in X-Seen-* headers);
 * /sha → sha256 of the body; /big?n= → n pattern bytes; /sse → events the test releases; WebSocket echo.
 */
export async function startTarget(): Promise<Target> {
  const sseNext: ((data: string) => void)[] = [];
  const seen: string[] = [];
  const cut: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push(req.url ?? '');
    res.once('close', () => {
      if (!res.writableFinished) cut.push(req.url ?? '');
    });
    if (url.pathname === '/sha') {
      void sha256Of(req).then((hex) => res.end(hex));
      return;
    }
    if (url.pathname === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      patternStream(Number(url.searchParams.get('n')), 7).pipe(res);
      return;
    }
    if (url.pathname === '/compressed') {
      // JSON compressed as ?enc= says (gzip or br).
      const json = JSON.stringify({ compressed: true, items: [1, 2, 3] });
      const br = url.searchParams.get('enc') === 'br';
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': br ? 'br' : 'gzip' });
      res.end(br ? zlib.brotliCompressSync(json) : zlib.gzipSync(json));
      return;
    }
    if (url.pathname === '/hang') return; // never answers (the connection closes with the target)
    if (url.pathname === '/tick') {
      // An endless event stream, one event every 50 ms, until the connection goes.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: 0\n\n');
      let n = 0;
      const timer = setInterval(() => res.write(`data: ${++n}\n\n`), 50);
      res.once('close', () => clearInterval(timer));
      return;
    }
    if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      sseNext.push((data) => (data === 'end' ? res.end() : res.write(`data: ${data}\n\n`)));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'x-seen-host': req.headers.host ?? '',
        'x-seen-xff': String(req.headers['x-forwarded-for'] ?? ''),
        'x-seen-xfh': String(req.headers['x-forwarded-host'] ?? ''),
        'x-seen-xfp': String(req.headers['x-forwarded-proto'] ?? ''),
        'x-seen-custom': String(req.headers['x-custom'] ?? ''),
        'x-seen-method': req.method ?? '',
        'x-seen-auth': String(req.headers.authorization ?? ''),
      });
      res.end(Buffer.concat(chunks));
    });
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.headers.host}`);
    ws.on('message', (data, binary) => ws.send(data, { binary }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sseNext,
    seen,
    cut,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Writes a Caddyfile with a tunnel site on `port` and starts nodecaddy on it. */
export async function startPublic(
  dir: string,
  port: number,
  opts: { extra?: string; env?: Record<string, string>; file?: string; workers?: number } = {},
): Promise<Nodecaddy> {
  const file = path.join(dir, opts.file ?? 'Caddyfile');
  writeFileSync(file, caddyfile(port, opts.extra));
  const workers = opts.workers === undefined ? [] : ['-workers', String(opts.workers)];
  return startNodecaddy(['-conf', file, '-log-format', 'json', ...workers], { cwd: dir, env: opts.env });
}

export function caddyfile(port: number, extra = ''): string {
  return `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret ${SECRET}\n\t\tping_interval 2s\n${extra}\t}\n}\n`;
}

/** Starts `nodecaddy tunnel` against the public server on `port`; waits for its Forwarding line unless told not to. */
export async function startClient(
  port: number,
  name: string,
  targetPort: number,
  opts: {
    secret?: string;
    wait?: boolean;
    args?: string[];
    /** The -server URL without the port (default http://tunnel.localhost). */
    server?: string;
    env?: Record<string, string>;
    nodeArgs?: string[];
  } = {},
): Promise<Nodecaddy> {
  const nc = spawnNodecaddy(
    [
      'tunnel',
      '-server',
      `${opts.server ?? 'http://tunnel.localhost'}:${port}`,
      '-dial',
      `127.0.0.1:${port}`,
      '-secret',
      opts.secret ?? SECRET,
      '-name',
      name,
      // A TCP tunnel given as -tcp takes no -to.
      ...(opts.args?.includes('-tcp') ? [] : ['-to', `127.0.0.1:${targetPort}`]),
      '-ping',
      '2s',
      '-max-backoff',
      '1s',
      // Tests run side by side (and beside other worktrees' tests): no one gets 127.0.0.1:4040 by chance.
      '-inspect',
      'off',
      ...(opts.args ?? []),
    ],
    { env: opts.env, nodeArgs: opts.nodeArgs },
  );
  if (opts.wait !== false) {
    await waitFor(() => nc.stdout().includes('Forwarding'), 15_000, `tunnel client ${name}`).catch(
      (err: unknown) => {
        nc.child.kill('SIGKILL');
        throw new Error(`${(err as Error).message}\n${nc.stdout()}${nc.stderr()}`);
      },
    );
  }
  return nc;
}

/** One request to the public server for `<name>.tunnel.localhost`. */
export function viaTunnel(
  port: number,
  name: string,
  urlPath: string,
  opts: {
    method?: string;
    body?: string | Readable;
    headers?: Record<string, string>;
    agent?: http.Agent;
  } = {},
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: urlPath,
      method: opts.method ?? 'GET',
      headers: { host: `${name}.tunnel.localhost:${port}`, ...opts.headers },
      agent: opts.agent ?? false,
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`${urlPath} timed out`)));
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

export async function text(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
