// HTTP/2 over one WebSocket. The public server is the HTTP/2 client, the tunnel client the HTTP/2 server.
// Both ends raise the flow-control windows, and both ping: a session whose peer stops answering is
// destroyed rather than left as a zombie (nodejs/node#61304).
import http2, { type ClientHttp2Session, type ServerHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import { H2_SESSION_OPTIONS, H2_SESSION_WINDOW } from './protocol.js';

/**
 * The error listener of a per-request stream whose failures surface elsewhere (its 'close', the session).
 * A module-level function on purpose: an inline `() => undefined` would hold its whole enclosing scope (the
 * request, the response, their headers) for as long as the stream object lives, and an HTTP/2 stream object
 * lives on after its request (Node keeps it reachable from old-generation objects until a full GC).
 */
export function ignoreError(): void {}

/** localhost, *.localhost, 127.0.0.0/8 and ::1: a connection that never leaves this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}

/** A buffer of a flush this big goes as a WebSocket message of its own, uncopied (bulk DATA payloads). */
const ALONE_BYTES = 16 * 1024;
/** Smaller buffers are joined into messages of up to this size (frame headers, small frames). */
const MAX_JOINED_BYTES = 256 * 1024;

/**
 * The WebSocket as a byte stream. Never object mode: HTTP/2's stream wrapper rejects string chunks.
 * `socket` is the connection under the WebSocket: a flush of several messages is written corked, in one
 * system call.
 */
export function wsStream(ws: WebSocket, socket?: Duplex): Duplex {
  const duplex = createWebSocketStream(ws);
  // nghttp2 hands each flush over as several buffers (frame headers, DATA payloads, several streams' frames),
  // written corked; without _writev every buffer became a WebSocket message of its own (about five per
  // request, each a frame header, a socket write and, on the client, a masking copy). Small buffers are
  // joined into one message instead (HTTP/2 is a byte stream: message boundaries carry no meaning on this
  // link); a big one (bulk DATA) goes alone, without a copy and far from the peer's maxPayload; and the
  // socket is corked while ws writes them, so a whole flush is one system call.
  duplex._writev = (chunks, callback) => {
    const messages: Buffer[] = [];
    let joined: Buffer[] = [];
    let joinedBytes = 0;
    const closeJoined = () => {
      if (joined.length > 0)
        messages.push(joined.length === 1 ? joined[0] : Buffer.concat(joined, joinedBytes));
      joined = [];
      joinedBytes = 0;
    };
    for (const { chunk } of chunks) {
      const b = chunk as Buffer;
      if (b.length >= ALONE_BYTES) {
        closeJoined();
        messages.push(b);
        continue;
      }
      if (joinedBytes + b.length > MAX_JOINED_BYTES) closeJoined();
      joined.push(b);
      joinedBytes += b.length;
    }
    closeJoined();
    // 'buffer' is what Writable itself passes along with Buffer chunks (the typings only list text encodings).
    const encoding = 'buffer' as BufferEncoding;
    if (messages.length === 1) {
      duplex._write(messages[0], encoding, callback);
      return;
    }
    // ws sends in order and fails every later send once one failed: the last callback speaks for all.
    const last = messages.length - 1;
    socket?.cork();
    messages.forEach((m, i) => duplex._write(m, encoding, i === last ? callback : ignoreError));
    socket?.uncork();
  };
  // Errors surface through the session and the WebSocket's close; an unhandled stream error must not crash.
  duplex.on('error', () => undefined);
  return duplex;
}

/**
 * Pings the peer every intervalMs; when a ping goes unanswered until the next one, the connection is dead
 * (a laptop that slept, a NAT that forgot us) and is terminated. Returns the stopper.
 */
export function heartbeat(ws: WebSocket, intervalMs: number, onDead: () => void): () => void {
  if (intervalMs <= 0) return () => undefined;
  let answered = true;
  const onPong = () => (answered = true);
  ws.on('pong', onPong);
  const timer = setInterval(() => {
    if (!answered) {
      clearInterval(timer);
      onDead();
      ws.terminate();
      return;
    }
    answered = false;
    ws.ping();
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    ws.off('pong', onPong);
  };
}

/** Server side: an HTTP/2 client session over the WebSocket; resolves once the peer's SETTINGS arrived. */
export function connectH2(ws: WebSocket, timeoutMs: number, socket?: Duplex): Promise<ClientHttp2Session> {
  const duplex = wsStream(ws, socket);
  const session = http2.connect('http://tunnel.invalid', {
    ...H2_SESSION_OPTIONS,
    createConnection: () => duplex,
  });
  ws.once('close', () => session.destroy());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error('tunnel client sent no HTTP/2 settings in time')),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      session.destroy();
      ws.terminate();
      reject(err);
    };
    session.once('error', fail);
    session.once('close', () => fail(new Error('tunnel closed during the handshake')));
    session.once('remoteSettings', () => {
      clearTimeout(timer);
      session.removeAllListeners('error');
      session.removeAllListeners('close');
      session.on('error', () => undefined);
      session.setLocalWindowSize(H2_SESSION_WINDOW);
      resolve(session);
    });
  });
}

/** Client side: an HTTP/2 server session over the WebSocket, accepting extended CONNECT for upgrades. */
export function acceptH2(ws: WebSocket, socket?: Duplex): ServerHttp2Session {
  const duplex = wsStream(ws, socket);
  const session = http2.performServerHandshake(duplex, {
    ...H2_SESSION_OPTIONS,
    settings: { ...H2_SESSION_OPTIONS.settings, enableConnectProtocol: true },
  });
  session.on('error', () => undefined);
  session.once('connect', () => session.setLocalWindowSize(H2_SESSION_WINDOW));
  ws.once('close', () => session.destroy());
  return session;
}

/** Pipes two byte streams into each other until either side ends or fails; then both are closed. */
export function splice(a: Duplex, b: Duplex): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      a.destroy();
      b.destroy();
      resolve();
    };
    for (const s of [a, b]) {
      s.on('error', finish);
      s.on('close', finish);
    }
    a.pipe(b);
    b.pipe(a);
  });
}

/**
 * Joins two byte streams both ways for a TCP tunnel: backpressure by pipe, and half-close, so that either
 * side's end (FIN, END_STREAM) ends only the other's sending side and the answer still flows back. A side
 * that fails, or closes before both of its directions were done (a reset), destroys the other.
 */
export function joinHalfOpen(a: Duplex, b: Duplex): void {
  const cut = (from: Duplex, to: Duplex) => () => {
    if (!(from.readableEnded && from.writableFinished) && !to.destroyed) to.destroy();
  };
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    from.on('error', ignoreError);
    from.once('close', cut(from, to));
    from.pipe(to);
  }
}
