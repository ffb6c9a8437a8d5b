// The relay listener (-cluster-listen): other instances of the cluster send it the visitor requests for
// tunnels this instance holds, over HTTP/2 (TLS, or h2c on private addresses), each stream proving the
// cluster secret (auth.ts). It answers nothing else: no proof, no answer but a refusal, and the session ends.
import http2, {
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type SecureServerOptions,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { selfSignedLeaf } from '../../certs/x509.js';
import type { Logger } from '../../core/logger.js';
import { hostOnly } from '../../core/vhost.js';
import {
  TunnelError,
  type Exchange,
  type Upgraded,
  type Upstream,
  type Visitor,
} from '../../middleware/tunnel/relay.js';
import { ignoreError, splice } from '../../tunnel/transport.js';
import {
  newNonce,
  nonceBinding,
  proofMatches,
  proofsFor,
  relayKey,
  tlsBinding,
  type SessionProofs,
} from './auth.js';
import { countFailure, countRelayed } from './metrics.js';
import {
  errorHead,
  forwardedOf,
  H_EVICT_TOKEN,
  H_NONCE,
  H_OP,
  H_PORT,
  H_PROOF,
  H_REMOTE,
  H_SITE,
  NOT_HERE,
  responseHead,
  SESSION_WINDOW,
  STREAM_WINDOW,
  TCP_PROTOCOL,
} from './wire.js';

export interface RelayHandler {
  /** The upstream of a tunnel this instance holds (its local session or the worker holding it), or undefined: not here. */
  upstream(siteKey: string, host: string): Upstream | undefined;
  evict(siteKey: string, host: string, token: string): Promise<boolean>;
  /**
   * For a TCP connection to public port `port` of tunnel `host`, accepted by another instance: what takes
   * its stream here (the held session's TCP opener), or undefined: not here. Absent: no TCP tunnels here.
   */
  tcp?(siteKey: string, host: string, port: number): ((stream: Duplex, remote: string) => void) | undefined;
}

export interface RelayServerOptions {
  host: string;
  port: number;
  secret: string;
  /** TLS with a throwaway certificate (addresses others reach over networks we do not own), else h2c. */
  tls: boolean;
  handler: RelayHandler;
  log: Logger;
}

/** A session that has not proved the secret by then is closed (authenticated ones may idle in a pool). */
const PROVE_WITHIN_MS = 10_000;
/** How long answers in flight may take to finish when the listener closes. */
const CLOSE_GRACE_MS = 1000;
/** The throwaway certificate is never checked (the proofs are): its dates only have to parse. */
const CERT_VALID_MS = 10 * 365 * 24 * 3600 * 1000;
/** Peers refused so far, each logged once (bounded: a scan from many addresses must not grow memory). */
const MAX_LOGGED_PEERS = 1024;

interface SessionState {
  /** Set from the TLS session at once, or by the h2c hello. */
  proofs?: SessionProofs;
  proven: boolean;
  readonly remote: string;
}

export async function startRelayServer(
  options: RelayServerOptions,
): Promise<{ port: number; close(): Promise<void> }> {
  const key = relayKey(options.secret);
  const settings = { initialWindowSize: STREAM_WINDOW, enableConnectProtocol: true };
  let server: Http2Server | http2.Http2SecureServer;
  if (options.tls) {
    const pem = await selfSignedLeaf(['nodecaddy-relay'], 'P256', CERT_VALID_MS);
    const tlsOptions: SecureServerOptions = { key: pem.key, cert: pem.cert, minVersion: 'TLSv1.3', settings };
    server = http2.createSecureServer(tlsOptions);
    // No HTTP/1.1, no other ALPN: not a relay client.
    server.on('unknownProtocol', (socket: TLSSocket) => socket.destroy());
  } else {
    server = http2.createServer({ settings });
  }
  const states = new WeakMap<Http2Session, SessionState>();
  const sessions = new Set<Http2Session>();
  const logged = new Set<string>();

  const refuse = (stream: ServerHttp2Stream, state: SessionState, code: string, reason: string) => {
    countFailure('in', code);
    if (!logged.has(state.remote) && logged.size < MAX_LOGGED_PEERS) {
      logged.add(state.remote);
      options.log.warn(
        { peer: state.remote, reason },
        'cluster relay: refused a peer (logged once per address)',
      );
    }
    const status = code === 'unauthorized' ? 401 : 400;
    respondError(stream, new TunnelError(status, code, reason), undefined);
    stream.session?.close();
  };

  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.on('error', ignoreError);
    session.once('close', () => sessions.delete(session));
    session.setLocalWindowSize(SESSION_WINDOW);
    const socket = session.socket;
    const state: SessionState = { proven: false, remote: socket.remoteAddress ?? '' };
    if (options.tls) {
      try {
        state.proofs = proofsFor(key, tlsBinding(socket as TLSSocket));
      } catch {
        // No keying material (the connection is already gone): nothing to bind proofs to.
        session.destroy();
        return;
      }
    }
    states.set(session, state);
    const unproven = setTimeout(() => {
      if (!state.proven) session.destroy();
    }, PROVE_WITHIN_MS);
    unproven.unref();
    session.once('close', () => clearTimeout(unproven));
  });
  server.on('sessionError', ignoreError);

  server.on('stream', (stream: ServerHttp2Stream, head: IncomingHttpHeaders) => {
    stream.on('error', ignoreError);
    const state = stream.session && states.get(stream.session);
    if (!state) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const op = head[H_OP];
    if (op === 'hello' && !options.tls) {
      hello(stream, head, state, key, (reason) => refuse(stream, state, 'bad-request', reason));
      return;
    }
    if (!state.proofs || !proofMatches(head[H_PROOF], state.proofs.client)) {
      refuse(stream, state, 'unauthorized', 'no valid proof of the cluster secret');
      return;
    }
    state.proven = true;
    const proof = state.proofs.server;
    if (op === 'evict') {
      void evict(stream, head, options.handler, proof);
      return;
    }
    if (op !== undefined || head[H_SITE] === undefined) {
      refuse(stream, state, 'bad-request', 'not a relay request');
      return;
    }
    if (head[':protocol'] === TCP_PROTOCOL) {
      tcpIn(stream, head, options.handler, proof);
      return;
    }
    void relayIn(stream, head, options.handler, proof);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => options.log.error({ err }, 'cluster relay listener failed'));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // GOAWAY: the relaying instances open no new stream here and the answers in flight may finish, for a
        // moment (an open WebSocket or event stream would keep the session forever).
        for (const session of sessions) session.close();
        const cut = setTimeout(() => {
          for (const session of sessions) session.destroy();
        }, CLOSE_GRACE_MS);
        cut.unref();
        server.once('close', () => clearTimeout(cut));
      }),
  };
}

/** The h2c session's first stream: the client's nonce in, the server's nonce and proof out. */
function hello(
  stream: ServerHttp2Stream,
  head: IncomingHttpHeaders,
  state: SessionState,
  key: Buffer,
  fail: (reason: string) => void,
): void {
  if (state.proofs) {
    fail('a second hello on one session');
    return;
  }
  const serverNonce = newNonce();
  const binding = nonceBinding(String(head[H_NONCE] ?? ''), serverNonce);
  if (!binding) {
    fail('a hello without a nonce');
    return;
  }
  state.proofs = proofsFor(key, binding);
  stream.respond(
    { ':status': 200, [H_NONCE]: serverNonce, [H_PROOF]: state.proofs.server },
    { endStream: true },
  );
}

async function evict(
  stream: ServerHttp2Stream,
  head: IncomingHttpHeaders,
  handler: RelayHandler,
  proof: string,
): Promise<void> {
  const { siteKey, fwd } = forwardedOf(head);
  let ok = false;
  try {
    ok = await handler.evict(siteKey, hostOnly(fwd.authority), String(head[H_EVICT_TOKEN] ?? ''));
  } catch {
    // Not evicted.
  }
  if (!stream.destroyed) stream.respond({ ':status': ok ? 204 : 409, [H_PROOF]: proof }, { endStream: true });
}

/** One relayed visitor request: to the tunnel held here, and its answer back on the stream. */
async function relayIn(
  stream: ServerHttp2Stream,
  head: IncomingHttpHeaders,
  handler: RelayHandler,
  proof: string,
): Promise<void> {
  countRelayed('in');
  const { fwd, siteKey } = forwardedOf(head);
  const host = hostOnly(fwd.authority);
  // The stream stands for the visitor: the relaying instance resets it when the visitor leaves.
  // Visitor is typed after the response of a visitor's HTTP request; the relay only listens for its 'close' and
  // reads `destroyed`, which the stream has with the same meaning.
  const visitor = stream as unknown as Visitor;
  try {
    // The relaying instance has done X-Forwarded-* (with the visitor's address); nothing is added here.
    const upstream = handler.upstream(siteKey, host);
    if (!upstream) throw new TunnelError(502, NOT_HERE, `${host} is not held by this instance`);
    if (fwd.protocol) {
      const answer = await upstream.upgrade(fwd, visitor);
      if (answer.status !== 101) return writeAnswer(stream, answer as Exchange, proof);
      const up = (answer as Upgraded).stream;
      if (stream.destroyed) {
        up.destroy();
        return;
      }
      stream.respond(responseHead(101, answer.headers, proof, true));
      await splice(stream, up);
      return;
    }
    const body = stream.endAfterHeaders ? null : stream;
    writeAnswer(stream, await upstream.request(fwd, body, visitor), proof);
  } catch (err) {
    if (err instanceof TunnelError && err.code !== 'visitor-gone') countFailure('in', err.code);
    respondError(stream, err, proof);
  }
}

/** One TCP connection accepted by another instance on a tunnel's public port: joined to the session here. */
function tcpIn(
  stream: ServerHttp2Stream,
  head: IncomingHttpHeaders,
  handler: RelayHandler,
  proof: string,
): void {
  countRelayed('in');
  const { siteKey, fwd } = forwardedOf(head);
  const host = hostOnly(fwd.authority);
  const port = Number(head[H_PORT]);
  const opener = Number.isInteger(port) ? handler.tcp?.(siteKey, host, port) : undefined;
  if (!opener) {
    countFailure('in', NOT_HERE);
    respondError(
      stream,
      new TunnelError(502, NOT_HERE, `${host}:${port} is not held by this instance`),
      proof,
    );
    return;
  }
  stream.respond({ ':status': 200, [H_PROOF]: proof });
  opener(stream, String(head[H_REMOTE] ?? ''));
}

/** The target's answer on the stream; a body failing halfway resets the stream (never a short answer). */
function writeAnswer(stream: ServerHttp2Stream, ex: Exchange, proof: string): void {
  const body = ex.body;
  if (stream.destroyed) {
    if (!Buffer.isBuffer(body)) body.destroy();
    return;
  }
  try {
    const head = responseHead(ex.status, ex.headers, proof, false);
    if (Buffer.isBuffer(body)) {
      stream.respond(head, { endStream: body.length === 0 });
      if (body.length > 0) stream.end(body);
      return;
    }
    stream.respond(head);
  } catch {
    // A field HTTP/2 refuses: the relaying instance sees a reset, as for a broken tunnel client.
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    if (!Buffer.isBuffer(body)) body.destroy();
    return;
  }
  body.on('error', ignoreError);
  body.once('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  stream.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(stream);
}

function respondError(stream: ServerHttp2Stream, err: unknown, proof: string | undefined): void {
  if (stream.destroyed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  try {
    stream.respond(errorHead(err, proof), { endStream: true });
  } catch {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }
}
