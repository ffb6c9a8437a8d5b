// HTTP/1.1 Upgrade requests (WebSocket and the like) run through a site's chain like any other request, so
// log, basicauth, header and errors apply to them. The chain sees a real ServerResponse bound to the
// connection: a middleware that answers normally (401, 404, a 502 page) writes an ordinary response and the
// connection closes after it. A directive that wants the connection itself calls `ctx.upgrade.claim()`
// (Go's Hijack): from then on the socket is the directive's alone and no longer counts as a request in flight.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HookedResponse } from './response.js';

export interface UpgradeRequest {
  /** The value of the Upgrade header, lower-cased (`websocket`). */
  readonly protocol: string;
  /** Bytes that arrived after the request head (usually empty). */
  readonly head: Buffer;
  /** True once a directive has taken the socket. */
  readonly claimed: boolean;
  /**
   * Takes the connection over: the response object is detached (nothing may be written through ctx.res
   * afterwards) and the caller owns the socket, including destroying it. Throws if headers were already sent.
   */
  claim(): Duplex;
}

/** A ServerResponse writing onto an upgrade request's socket, closed after one response; plus the hijack. */
export function upgradeResponse(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): { res: ServerResponse; upgrade: UpgradeRequest } {
  const res = new HookedResponse(req);
  // One response, then the connection ends: after an Upgrade request nothing else may follow on it.
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    if (!claimed) socket.end();
  });
  socket.on('error', () => socket.destroy());
  let claimed = false;
  const upgrade: UpgradeRequest = {
    protocol: String(req.headers.upgrade ?? '').toLowerCase(),
    head,
    get claimed() {
      return claimed;
    },
    claim() {
      if (claimed) throw new Error('upgrade already claimed');
      if (res.headersSent) throw new Error('cannot claim an upgrade after a response was written');
      claimed = true;
      res.detachSocket(socket as Socket);
      // Whoever counts this request in flight (listener, generation) stops counting it now.
      res.emit('close');
      return socket;
    },
  };
  return { res, upgrade };
}
