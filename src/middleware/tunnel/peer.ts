// Tunnels across worker processes. The process holding a session also serves it on a unix socket in the
// server's runtime directory, named after the tunnel; a process without the session relays to that socket.
// Binding the socket is the cross-process lock on the name: EADDRINUSE means another process holds it (or
// held it and died: a socket nobody answers on is stale and is removed).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import http from '../../core/node-http.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { withoutHopByHop } from '../../core/forwarded.js';
import { HookedResponse } from '../../core/response.js';
import { upgradeResponse } from '../../core/upgrade.js';
import { H_DETAIL, H_ERROR, H_TOKEN, type TrafficCounters } from '../../tunnel/protocol.js';
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
/** Held open by a process that serves the name over a link of its own (a join) for as long as the name is held. */
const WATCH_PATH = '/_nodecaddy/watch';

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
  /**
   * Another process of this server took a link of the same client (token) for the name: keep `res` open while
   * this process holds the name for that client, and end it when the name is dropped; `req` brings that link's
   * traffic counters (JSON lines). False: not held so.
   */
  watch(token: string, req: IncomingMessage, res: ServerResponse): boolean;
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
    // A join's watch is a request whose body (its traffic reports) lasts as long as the join: Node's default
    // limit of 5 minutes for receiving a whole request would cut it.
    server.requestTimeout = 0;
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
  if (req.url === WATCH_PATH && req.method === 'POST') {
    if (!handler.watch(String(req.headers[H_TOKEN] ?? ''), req, res)) {
      res.writeHead(409, { 'content-length': 0 }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
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

/** The holder's promise that a name is held for a client, kept while the holder keeps it. */
export interface HolderWatch {
  /** Called once when the holder drops the name (or dies). */
  onEnd(listener: () => void): void;
  /** Tells the holder this link's traffic so far (it reports the tunnel's totals). */
  report(traffic: TrafficCounters): void;
  /** This process no longer needs the watch (after a last report). */
  close(): void;
}

/** The longest counters line a holder accepts from a join. */
const MAX_REPORT = 1024;

/** Reads a join's counters reports (JSON lines) from its watch request; a malformed one ends the watch. */
export function readReports(req: IncomingMessage, onReport: (traffic: TrafficCounters) => void): void {
  let pending = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const t = parseCounters(line);
      if (!t) {
        req.destroy();
        return;
      }
      onReport(t);
    }
    if (pending.length > MAX_REPORT) req.destroy();
  });
}

function parseCounters(line: string): TrafficCounters | undefined {
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    const keys = ['requests', 'connections', 'bytesIn', 'bytesOut', 'openStreams'] as const;
    if (!keys.every((k) => Number.isSafeInteger(v[k]) && (v[k] as number) >= 0)) return undefined;
    const [requests, connections, bytesIn, bytesOut, openStreams] = keys.map((k) => v[k] as number);
    return { requests, connections, bytesIn, bytesOut, openStreams };
  } catch {
    return undefined;
  }
}

/**
 * Asks the process that holds the name (its socket `file`) whether it holds it for this client (`token`),
 * and keeps asking for as long as it does: undefined when it does not (or nobody holds it here).
 */
export function watchHolder(
  file: string,
  token: string,
  timeoutMs: number,
): Promise<HolderWatch | undefined> {
  return new Promise((resolve) => {
    const req = http.request({
      socketPath: file,
      path: WATCH_PATH,
      method: 'POST',
      headers: { [H_TOKEN]: token, 'content-type': 'application/jsonl' },
      agent: false,
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        res.resume();
        resolve(undefined);
        return;
      }
      let ended = false;
      const listeners: (() => void)[] = [];
      const end = () => {
        if (ended) return;
        ended = true;
        for (const listener of listeners) listener();
      };
      res.on('error', end);
      res.on('close', end);
      res.resume();
      resolve({
        onEnd: (listener) => (ended ? queueMicrotask(listener) : listeners.push(listener)),
        report: (traffic) => {
          if (!ended && !req.writableEnded) req.write(`${JSON.stringify(traffic)}\n`);
        },
        close: () => {
          if (!req.writableEnded) req.end();
          // The holder ends its answer when it read the end; a holder that does not is cut.
          setTimeout(() => req.destroy(), 2000).unref();
        },
      });
    });
    req.flushHeaders();
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
