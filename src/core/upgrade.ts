// HTTP/1.1 Upgrade requests (WebSocket) through the normal chain. Node hands an upgrade request over as a
// raw socket; the listener gives it a ServerResponse on that socket so every directive (basicauth, rewrite,
// errors, …) handles it like any request, and one that can forward upgrades (proxy) takes the socket here.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export interface UpgradeRequest {
  /** The client connection, no longer parsed as HTTP. */
  readonly socket: Duplex;
  /** Bytes the client sent after the request head (already read from the socket). */
  readonly head: Buffer;
  /** Set by whoever forwards the upgrade; the listener then leaves the socket alone. */
  taken: boolean;
}

const upgrades = new WeakMap<IncomingMessage, UpgradeRequest>();

/** Marks req as an upgrade request (the listener does this). */
export function markUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): UpgradeRequest {
  const u: UpgradeRequest = { socket, head, taken: false };
  upgrades.set(req, u);
  return u;
}

/** The upgrade behind req, or undefined for an ordinary request. */
export function upgradeOf(req: IncomingMessage): UpgradeRequest | undefined {
  return upgrades.get(req);
}
