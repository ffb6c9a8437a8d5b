// The relaying side's connections: per peer address a few HTTP/2 sessions, opened when first needed and again
// when they die or the peer sends GOAWAY, each proven to reach an instance that knows the cluster secret
// (auth.ts) before it carries a request. A peer that cannot be reached fails fast: the connect is bounded,
// and for a moment after a failure requests to it fail at once instead of each waiting for its own connect.
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { Logger } from '../../core/logger.js';
import { TunnelError } from '../../middleware/tunnel/relay.js';
import { ignoreError } from '../../tunnel/transport.js';
import { newNonce, nonceBinding, proofMatches, proofsFor, tlsBinding, type SessionProofs } from './auth.js';
import { H_NONCE, H_OP, H_PROOF, SESSION_WINDOW, STREAM_WINDOW } from './wire.js';

/** One authenticated session to a peer. */
export interface RelaySession {
  readonly h2: ClientHttp2Session;
  readonly proofs: SessionProofs;
  readonly tls: boolean;
}

export interface PoolOptions {
  key: Buffer;
  log: Logger;
  /** Whether the peer at `address` is dialled over TLS (else h2c). */
  tls: (address: string) => boolean;
  connectTimeoutMs: number;
  sessionsPerPeer: number;
}

/** After a failed connect, requests to that peer fail at once for this long. */
const DOWN_MS = 1000;
/** An unanswered ping within this long means a hung peer: its session is dropped. */
const PING_TIMEOUT_MS = 2000;

class Peer {
  readonly slots: (Promise<RelaySession> | undefined)[] = [];
  next = 0;
  downUntil = 0;
  lastError: TunnelError | undefined;
}

export class SessionPool {
  private readonly peers = new Map<string, Peer>();
  private readonly distrusted = new Set<string>();
  private closed = false;

  constructor(private readonly options: PoolOptions) {}

  /** A session to `address`, round robin over its slots; throws TunnelError 502 when the peer is unreachable. */
  async session(address: string): Promise<RelaySession> {
    if (this.closed) throw new TunnelError(502, 'peer-unreachable', 'the cluster relay is closed');
    let peer = this.peers.get(address);
    if (!peer) {
      peer = new Peer();
      this.peers.set(address, peer);
    }
    if (peer.lastError && Date.now() < peer.downUntil) {
      const e = peer.lastError;
      throw new TunnelError(e.status, e.code, e.message);
    }
    const i = peer.next;
    peer.next = (i + 1) % this.options.sessionsPerPeer;
    const s = await (peer.slots[i] ?? this.open(peer, i, address));
    if (!s.h2.closed && !s.h2.destroyed) return s;
    // Died between its last use and now ('close' not delivered yet): one fresh try.
    if (peer.slots[i]) peer.slots[i] = undefined;
    return this.open(peer, i, address);
  }

  /** A session whose answer did not prove the secret: dropped, the peer refused for a moment, logged once. */
  distrust(session: RelaySession, address: string): void {
    session.h2.destroy();
    const peer = this.peers.get(address);
    if (peer) this.markDown(peer, unauthenticated(address));
    this.logDistrust(address);
  }

  /** After a timed-out answer: a session whose peer no longer answers pings is dropped. */
  probe(session: RelaySession): void {
    if (session.h2.destroyed) return;
    const timer = setTimeout(() => session.h2.destroy(), PING_TIMEOUT_MS);
    timer.unref();
    try {
      session.h2.ping((err) => {
        clearTimeout(timer);
        if (err) session.h2.destroy();
      });
    } catch {
      clearTimeout(timer);
      session.h2.destroy();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.peers.values()].flatMap((p) => p.slots.filter((s) => s !== undefined));
    this.peers.clear();
    await Promise.all(pending.map((p) => p.then((s) => s.h2.destroy(), ignoreError)));
  }

  private open(peer: Peer, i: number, address: string): Promise<RelaySession> {
    const opening = this.connect(address);
    peer.slots[i] = opening;
    opening.then(
      (s) => {
        const drop = () => {
          if (peer.slots[i] === opening) peer.slots[i] = undefined;
        };
        // GOAWAY: the streams in flight finish; new ones go to a new session.
        s.h2.once('goaway', drop);
        s.h2.once('close', drop);
        if (this.closed) s.h2.destroy();
      },
      (err: TunnelError) => {
        if (peer.slots[i] === opening) peer.slots[i] = undefined;
        this.markDown(peer, err);
      },
    );
    return opening;
  }

  private markDown(peer: Peer, err: TunnelError): void {
    peer.lastError = err;
    peer.downUntil = Date.now() + DOWN_MS;
  }

  private logDistrust(address: string): void {
    if (this.distrusted.has(address)) return;
    this.distrusted.add(address);
    this.options.log.warn(
      { peer: address },
      'cluster relay: the peer did not prove the cluster secret (another -cluster-secret, or not an instance of this cluster); not relaying to it',
    );
  }

  /** Connects, and proves both ways, within the connect timeout. */
  private connect(address: string): Promise<RelaySession> {
    const { host, port } = splitAddress(address);
    const useTls = this.options.tls(address);
    return new Promise((resolve, reject) => {
      let socket: net.Socket | TLSSocket | undefined;
      const h2 = http2.connect(`${useTls ? 'https' : 'http'}://${address}`, {
        settings: { initialWindowSize: STREAM_WINDOW },
        createConnection: () => {
          socket = useTls
            ? tls.connect({
                host,
                port,
                servername: 'nodecaddy-relay',
                // The certificate is a throwaway: the proofs bound to this TLS session authenticate the peer.
                rejectUnauthorized: false,
                ALPNProtocols: ['h2'],
                minVersion: 'TLSv1.3',
              })
            : net.connect({ host, port });
          socket.setNoDelay(true);
          socket.setKeepAlive(true, 10_000);
          return socket;
        },
      });
      h2.on('error', ignoreError);
      let settled = false;
      const fail = (err: TunnelError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        h2.destroy();
        reject(err);
      };
      const done = (proofs: SessionProofs) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        h2.unref();
        resolve({ h2, proofs, tls: useTls });
      };
      const timer = setTimeout(
        () => fail(unreachable(address, `no answer within ${this.options.connectTimeoutMs} ms`)),
        this.options.connectTimeoutMs,
      );
      h2.once('error', (err: Error) => fail(unreachable(address, err.message)));
      h2.once('close', () => fail(unreachable(address, 'the connection closed')));
      h2.once('connect', () => {
        h2.setLocalWindowSize(SESSION_WINDOW);
        if (useTls && socket) {
          done(proofsFor(this.options.key, tlsBinding(socket as TLSSocket)));
          return;
        }
        this.hello(h2, address).then(done, fail);
      });
    });
  }

  /** h2c: nonces both ways, and the server's proof over them checked before the session is used. */
  private hello(h2: ClientHttp2Session, address: string): Promise<SessionProofs> {
    const clientNonce = newNonce();
    return new Promise((resolve, reject) => {
      const stream = h2.request(
        { ':method': 'POST', ':path': '/', [H_OP]: 'hello', [H_NONCE]: clientNonce },
        { endStream: true },
      );
      stream.on('error', ignoreError);
      stream.once('close', () => reject(unreachable(address, 'the hello was refused')));
      stream.once('response', (head) => {
        const binding = nonceBinding(clientNonce, String(head[H_NONCE] ?? ''));
        const proofs = binding && proofsFor(this.options.key, binding);
        if (proofs && proofMatches(head[H_PROOF], proofs.server)) {
          resolve(proofs);
          return;
        }
        this.logDistrust(address);
        reject(unauthenticated(address));
      });
    });
  }
}

function unreachable(address: string, why: string): TunnelError {
  return new TunnelError(502, 'peer-unreachable', `the instance at ${address} is unreachable: ${why}`);
}

function unauthenticated(address: string): TunnelError {
  return new TunnelError(
    502,
    'peer-unauthenticated',
    `the instance at ${address} did not prove the cluster secret`,
  );
}

/** `host:port` or `[v6]:port`. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(colon + 1)) };
}
