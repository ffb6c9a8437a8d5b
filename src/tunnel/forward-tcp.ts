// One TCP connection of a TCP tunnel: the server's CONNECT stream, joined to a new connection to the local
// service both ways (backpressure, half-close). The stream is answered 200 once the service accepted.
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { H_DETAIL, H_ERROR } from './protocol.js';
import { ignoreError, joinHalfOpen } from './transport.js';

export interface TcpSummary {
  /** The visitor's address as the server saw it. */
  remote: string;
  durationMs: number;
  /** Why it could not start (the service refused) or ended badly. */
  error?: string;
}

export function forwardTcp(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  target: { host: string; port: number },
  done: (summary: TcpSummary) => void,
): void {
  const started = performance.now();
  const remote = String(headers['x-forwarded-for'] ?? '');
  stream.on('error', ignoreError);
  const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    if (stream.destroyed) {
      socket.destroy();
      return;
    }
    stream.respond({ ':status': 200 });
    joinHalfOpen(stream, socket);
  });
  socket.once('error', (err: NodeJS.ErrnoException) => {
    if (connected || stream.destroyed) return;
    const why = err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message);
    stream.respond(
      {
        ':status': 502,
        [H_ERROR]: 'target-down',
        [H_DETAIL]: `the tunnel client could not reach ${target.host}:${target.port}: ${why}`,
      },
      { endStream: true },
    );
    done({ remote, durationMs: performance.now() - started, error: why });
  });
  // A visitor that leaves before the service answered the connect: nothing to keep.
  stream.once('close', () => {
    if (!connected) socket.destroy();
    else done({ remote, durationMs: performance.now() - started });
  });
}
