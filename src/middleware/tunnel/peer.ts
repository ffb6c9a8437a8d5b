// Tunnels across worker processes. The process holding a session also serves it on a unix socket in the
// server's runtime directory, named after the tunnel; a process without the session relays to that socket.
// Binding the socket is the cross-process lock on the name: EADDRINUSE means another process holds it (or
// held it and died: a socket nobody answers on is stale and is removed).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { withoutHopByHop } from '../../core/forwarded.js';
import { HookedResponse } from '../../core/response.js';
import { upgradeResponse } from '../../core/upgrade.js';
import { H_DETAIL, H_ERROR, H_TOKEN } from '../../tunnel/protocol.js';
import {
  relay,
  TunnelError,
  visitorGone,
  type Exchange,
  type Forwarded,
  type Upgraded,
  type Upstream,
  type Visitor,
} from './relay.js';

const EVICT_PATH = '/_nodecaddy/evict';

let runDir: { dir: string; own: boolean } | undefined;

/** The run dir shared by the server processes (SetupContext.runDir), or a private temp dir of this process. */
function runtimeDir(shared: string | undefined): string {
  if (shared && runDir?.dir !== shared) {
    releaseRuntimeDir();
    mkdirSync(shared, { recursive: true, mode: 0o700 });
    runDir = { dir: shared, own: false };
  }
  runDir ??= { dir: mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-run-')), own: true };
  return runDir.dir;
}

/** Removes the private runtime dir when no tunnel site is left (a shared one belongs to the primary). */
export function releaseRuntimeDir(): void {
  if (runDir?.own) rmSync(runDir.dir, { recursive: true, force: true });
  runDir = undefined;
}

/** The socket of a tunnel: readable name first, a hash of site and host to keep it unique and short. */
export function socketPath(shared: string | undefined, siteKey: string, host: string): string {
  const hash = createHash('sha256').update(`${siteKey}\n${host}`).digest('hex').slice(0, 16);
  const label = host
    .split('.')[0]
    .replace(/[^a-z0-9-]/g, '')
    .slice(0, 32);
  return path.join(runtimeDir(shared), `tunnel-${label}-${hash}.sock`);
}

/** What the socket of a held tunnel answers. */
export interface PeerHandler {
  upstream: Upstream;
  /** The reconnect of the same client (same token) asks to take over: close and give up the name. */
  evict(token: string): Promise<boolean>;
}

/**
 * Binds the tunnel's socket. Resolves with the server, or 'taken' when a live process holds it.
 * A stale socket (connect refused) is removed and bound again.
 */
export async function bindPeer(file: string, handler: PeerHandler): Promise<net.Server | 'taken'> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = http.createServer(
      { ServerResponse: HookedResponse },
      (req, res) => void serve(handler, req, res),
    );
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const { res, upgrade } = upgradeResponse(req, socket, head);
      relay(res, upgrade, incoming(req), null, handler.upstream).catch((err: unknown) => refuse(res, err));
    });
    const bound = await new Promise<boolean | Error>((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? false : err));
      // exclusive: a cluster worker must bind the socket itself; a listen() shared through the primary would
      // succeed in every worker and the socket would lock nothing.
      server.listen({ path: file, exclusive: true }, () => resolve(true));
    });
    if (bound === true) {
      server.on('error', () => undefined);
      return server;
    }
    if (bound instanceof Error) throw bound;
    if (await isLive(file)) return 'taken';
    await unlink(file).catch(() => undefined);
  }
  return 'taken';
}

async function serve(handler: PeerHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url === EVICT_PATH && req.method === 'DELETE') {
    const ok = await handler.evict(String(req.headers[H_TOKEN] ?? ''));
    res.writeHead(ok ? 204 : 409).end();
    return;
  }
  const fwd = incoming(req);
  const body = req.headers['content-length'] || req.headers['transfer-encoding'] ? req : null;
  try {
    await relay(res, undefined, fwd, body, handler.upstream);
  } catch (err) {
    refuse(res, err);
  }
}

/** The request as the relaying process prepared it (hop-by-hop gone, X-Forwarded-* set). */
function incoming(req: IncomingMessage): Forwarded {
  const protocol = req.headers.upgrade ? String(req.headers.upgrade).toLowerCase() : undefined;
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    authority: String(req.headers.host ?? ''),
    headers: withoutHopByHop(req.headers),
    protocol,
  };
}

/** A failure, told to the relaying process in headers it turns back into a TunnelError. */
function refuse(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = err instanceof TunnelError ? err : new TunnelError(502, 'no-tunnel', 'tunnel failed');
  res
    .writeHead(e.status, { ...e.headers, [H_ERROR]: e.code, [H_DETAIL]: e.message, 'content-length': 0 })
    .end();
}

function isLive(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Asks the process holding the tunnel to close it for a reconnect of the same client. */
export function askEvict(file: string, token: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(
      { socketPath: file, path: EVICT_PATH, method: 'DELETE', headers: { [H_TOKEN]: token } },
      (res) => {
        res.resume();
        resolve(res.statusCode === 204);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const peerAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 });

/** The tunnel as held by another process: requests go to its socket. */
export class PeerUpstream implements Upstream {
  constructor(
    private readonly file: string,
    private readonly host: string,
    private readonly timeoutMs: number,
  ) {}

  request(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Exchange> {
    return this.send(fwd, body, visitor) as Promise<Exchange>;
  }

  upgrade(fwd: Forwarded, visitor: Visitor): Promise<Upgraded | Exchange> {
    return this.send(fwd, null, visitor);
  }

  /**
   * Sends the request to the holding process. A visitor who goes away before the answer closes this
   * connection; the holder sees its own visitor (this request) go and cancels the stream to the client.
   */
  private send(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Upgraded | Exchange> {
    const headers = { ...fwd.headers, host: fwd.authority };
    if (fwd.protocol) Object.assign(headers, { connection: 'Upgrade', upgrade: fwd.protocol });
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.file,
        method: fwd.method,
        path: fwd.path,
        headers,
        agent: fwd.protocol ? false : peerAgent,
      });
      let answered = false;
      const onGone = () => {
        if (!answered) req.destroy(visitorGone(this.host));
      };
      visitor.once('close', onGone);
      if (visitor.destroyed) queueMicrotask(onGone);
      const settle = () => {
        answered = true;
        visitor.off('close', onGone);
        req.setTimeout(0);
      };
      req.setTimeout(this.timeoutMs, () => {
        if (!answered) req.destroy(new TunnelError(504, 'timeout', `no answer for ${this.host} in time`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (answered) return;
        visitor.off('close', onGone);
        if (err instanceof TunnelError) reject(err);
        else if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
          reject(new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${this.host}`));
        else reject(new TunnelError(502, 'no-tunnel', `the tunnel for ${this.host} failed: ${err.message}`));
      });
      req.on('upgrade', (res, socket, head) => {
        settle();
        if (head.length > 0) socket.unshift(head);
        resolve({ status: 101, headers: withoutHopByHop(res.headers), stream: socket });
      });
      req.on('response', (res) => {
        settle();
        const code = res.headers[H_ERROR];
        if (typeof code === 'string') {
          res.resume();
          const auth = res.headers['www-authenticate'];
          const headers: Record<string, string> = auth ? { 'www-authenticate': auth } : {};
          reject(new TunnelError(res.statusCode ?? 502, code, String(res.headers[H_DETAIL] ?? ''), headers));
          return;
        }
        resolve({ status: res.statusCode ?? 502, headers: withoutHopByHop(res.headers), body: res });
      });
      if (body) {
        body.on('error', (err) => req.destroy(err));
        body.pipe(req);
      } else req.end();
    });
  }
}
