// Checks on a request head that come before routing, and the order of pipelined HTTP/1.1 requests.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpResponse } from './response.js';

/** A Host (or :authority) RFC 9112 allows: reg-name, IPv4 or an IP literal in brackets, and a port. */
const VALID_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d*)?$/;

const ALLOW = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH';

/** Why a request is refused before it reaches a site, or undefined when it may go on. */
export function checkRequestHead(
  req: IncomingMessage,
): { status: number; headers?: Record<string, string> } | undefined {
  // CONNECT asks us to be a forward proxy, which we are not (over HTTP/1.1 it never reaches here).
  if (req.method === 'CONNECT') return { status: 405, headers: { Allow: ALLOW, Connection: 'close' } };
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') hosts++;
  // Two Host fields, or one with a path, a space or user info in it: RFC 9112 §3.2 says 400.
  if (hosts > 1) return { status: 400 };
  const host = req.headers.host;
  if (host !== undefined && !VALID_HOST.test(host)) return { status: 400 };
  return undefined;
}

/** Methods whose pipelined requests may run side by side (RFC 9110 §9.2.1 safe methods). */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

interface SocketState {
  /** Requests of this connection running now, and how many of them are unsafe. */
  running: number;
  unsafeRunning: number;
  /** Requests waiting for those to finish, in arrival order. */
  readonly waiting: (() => void)[];
}

/**
 * Pipelined requests on one HTTP/1.1 connection: safe ones run side by side (RFC 9112 §9.3.2 allows it), but
 * an unsafe one (a POST, say) starts only once every request before it has been answered, and the ones behind
 * it wait for it in turn. Node parses and hands over pipelined requests at once; without this, two POSTs sent
 * back to back reached an upstream concurrently.
 */
export class RequestGate {
  private readonly states = new WeakMap<Socket, SocketState>();

  /** True when the request may run now; otherwise `run` is called when its turn comes. */
  admit(req: IncomingMessage, res: HttpResponse, run: () => void): boolean {
    const socket = req.socket;
    let state = this.states.get(socket);
    if (!state) {
      state = { running: 0, unsafeRunning: 0, waiting: [] };
      this.states.set(socket, state);
    }
    const safe = SAFE.has(req.method ?? '');
    const now = state.running === 0 || (safe && state.unsafeRunning === 0 && state.waiting.length === 0);
    const started = () => {
      state.running++;
      if (!safe) state.unsafeRunning++;
      res.once('close', () => this.finished(state, safe));
    };
    if (now) {
      started();
      return true;
    }
    state.waiting.push(() => {
      started();
      run();
    });
    return false;
  }

  private finished(state: SocketState, safe: boolean): void {
    state.running--;
    if (!safe) state.unsafeRunning--;
    if (state.running === 0) state.waiting.shift()?.();
  }
}
