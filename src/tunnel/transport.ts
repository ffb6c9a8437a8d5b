// What both ends of a tunnel share besides the frames: liveness (both ping; a connection whose peer stops
// answering is cut and redialled, not left half-dead) and joining byte streams.
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { countRead } from '../core/read-gc.js';
import type { LinkSocket } from './link.js';

/**
 * The error listener of a per-request stream whose failures surface elsewhere (its 'close', the session).
 * A module-level function on purpose: an inline `() => undefined` would hold its whole enclosing scope (the
 * request, the response, their headers) for as long as the stream object lives.
 */
export function ignoreError(): void {}

/** localhost, *.localhost, 127.0.0.0/8 and ::1: a connection that never leaves this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}

/**
 * Pings the peer every intervalMs; when a ping goes unanswered until the next one, the connection is dead
 * (a laptop that slept, a NAT that forgot us) and is terminated. `onRtt` hears each round trip in ms (the
 * first ping goes at once when it is given). Returns the stopper.
 */
export function heartbeat(
  ws: LinkSocket,
  intervalMs: number,
  onDead: () => void,
  onRtt?: (ms: number) => void,
): () => void {
  if (intervalMs <= 0) return () => undefined;
  let answered = true;
  let sentAt = 0;
  const onPong = () => {
    answered = true;
    onRtt?.(performance.now() - sentAt);
  };
  ws.on('pong', onPong);
  const ping = () => {
    answered = false;
    sentAt = performance.now();
    ws.ping();
  };
  if (onRtt) ping();
  const timer = setInterval(() => {
    if (!answered) {
      clearInterval(timer);
      onDead();
      ws.terminate();
      return;
    }
    ping();
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    ws.off('pong', onPong);
  };
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
    // A TCP connection's reads are fresh buffers (core/read-gc.ts); the other side's are the link's, counted.
    if (from instanceof Socket) from.on('data', (chunk: Buffer) => countRead(chunk.length));
    from.pipe(to);
  }
}
