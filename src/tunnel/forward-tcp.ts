// One TCP connection of a TCP tunnel: the server's CONNECT stream, joined to a new connection to the local
// service both ways (backpressure, half-close). The stream is answered 200 once the service accepted.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { errorWire, responseWire, type RequestHead } from './headers.js';
import type { MuxStream } from './mux-stream.js';
import { StreamDuplex } from './stream-duplex.js';
import { ignoreError, joinHalfOpen } from './transport.js';

export interface TcpSummary {
  /** The visitor's address as the server saw it. */
  remote: string;
  durationMs: number;
  /** Why it could not start (the service refused) or ended badly. */
  error?: string;
}

export function forwardTcp(
  stream: MuxStream,
  head: RequestHead,
  early: Buffer,
  target: { host: string; port: number },
  done: (summary: TcpSummary) => void,
): void {
  const started = performance.now();
  const remote = String(head.headers['x-forwarded-for'] ?? '');
  const duplex = new StreamDuplex(stream);
  duplex.on('error', ignoreError);
  if (early.length > 0) duplex.deliver(early, false);
  const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    if (stream.done) {
      socket.destroy();
      return;
    }
    stream.reply(responseWire(200, {}, true), undefined, false);
    joinHalfOpen(duplex, socket);
  });
  socket.once('error', (err: NodeJS.ErrnoException) => {
    if (connected || stream.done) return;
    const why = err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message);
    stream.reply(
      errorWire(
        502,
        'target-down',
        `the tunnel client could not reach ${target.host}:${target.port}: ${why}`,
      ),
      undefined,
      true,
    );
    done({ remote, durationMs: performance.now() - started, error: why });
    duplex.destroy();
  });
  // A visitor that leaves before the service answered the connect: nothing to keep.
  duplex.once('close', () => {
    if (!connected) socket.destroy();
    else done({ remote, durationMs: performance.now() - started });
  });
}
