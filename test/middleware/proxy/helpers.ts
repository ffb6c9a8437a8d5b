// Shared by the proxy tests: nodecaddy in-process on a Caddyfile, and real backends on 127.0.0.1.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { loadConfig, type CaddyfileInput, type LoadOptions } from '../../../src/app.js';
import { defineDirective } from '../../../src/core/directive.js';
import type { Logger } from '../../../src/core/logger.js';
import { silentLogger } from '../../../src/core/logger.js';
import { directives } from '../../../src/middleware/index.js';
import { Runtime } from '../../../src/runtime.js';
import { tempDir } from '../../helpers/process.js';

/** `bodylimit <bytes>`: sets ctx.maxBodyBytes as the `limits` directive does (not on this branch). */
const bodylimit = defineDirective<number>({
  name: 'bodylimit',
  setup(d) {
    d.next();
    return Number(d.remainingArgs()[0]);
  },
  build(limit) {
    return {
      middleware: (next) => (ctx) => {
        ctx.maxBodyBytes = limit;
        return next(ctx);
      },
    };
  },
});

export interface Site {
  port: number;
  runtime: Runtime;
  stop(): Promise<void>;
}

/** Runs nodecaddy in this process on the Caddyfile text (use `127.0.0.1:0` as the address). */
export async function startSite(text: string, log: Logger = silentLogger()): Promise<Site> {
  const { dir, cleanup } = tempDir();
  const options: LoadOptions = {
    root: dir,
    host: '',
    port: '0',
    cwd: dir,
    env: {},
    directives: [bodylimit, ...directives],
  };
  const input = (): CaddyfileInput => ({ text, name: 'Caddyfile', baseDir: dir });
  const runtime = new Runtime({ ...options, log, graceMs: 2000, readInput: input, watch: false });
  await runtime.start(loadConfig(input(), options));
  const port = [...runtime.boundPorts().values()][0];
  return {
    port,
    runtime,
    async stop() {
      await runtime.stop(2000);
      cleanup();
    },
  };
}

export interface Backend {
  server: http.Server;
  port: number;
  /** `127.0.0.1:<port>` */
  addr: string;
  /** Request count. */
  hits: number;
  /** TCP connections accepted so far. */
  connections: number;
  /** The last request seen. */
  last?: http.IncomingMessage;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, b: Backend) => void;

/** A backend that answers `name` (or runs handler), counting requests and connections. */
export async function startBackend(name: string, handler?: Handler): Promise<Backend> {
  const sockets = new Set<Socket>();
  const b = { hits: 0, connections: 0 } as Backend;
  const server = http.createServer((req, res) => {
    b.hits++;
    b.last = req;
    if (handler) handler(req, res, b);
    else {
      res.setHeader('x-backend', name);
      res.end(name);
    }
  });
  server.on('connection', (s: Socket) => {
    b.connections++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.server = server;
  b.port = (server.address() as AddressInfo).port;
  b.addr = `127.0.0.1:${b.port}`;
  b.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return b;
}

/** GET with a keep-alive agent of its own, returning status, headers and body. */
export function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  agent: http.Agent | false = false,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}
