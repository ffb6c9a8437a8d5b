// One TCP connection of a TCP tunnel: the server's CONNECT stream, joined to a new connection to the local
// service both ways (backpressure, half-close). The stream is answered 200 once the service accepted.
// What the service sends is read into the shared READ_BUFFER (core/h1/buffers.ts) and copied into reused
// chunks that go back once the link has written them: a fresh 64 KB buffer per read, as a plain socket
// reads, made V8 run a full collection every few tens of MB of a stream.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { copyReadPart, READ_BUFFER } from '../core/h1/buffers.js';
import { errorWire, responseWire, type RequestHead } from './headers.js';
import type { MuxStream } from './mux-stream.js';
import { StreamDuplex } from './stream-duplex.js';
import { ignoreError } from './transport.js';

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
  const fromService = (length: number) => {
    if (duplex.destroyed) return true;
    const part = copyReadPart(READ_BUFFER.subarray(0, length));
    if (!stream.write(part.buf, part.release)) socket.pause();
    return true;
  };
  const socket = net.connect({
    host: target.host,
    port: target.port,
    allowHalfOpen: true,
    noDelay: true,
    onread: { buffer: READ_BUFFER, callback: fromService },
  });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    if (stream.done) {
      socket.destroy();
      return;
    }
    stream.reply(responseWire(200, {}, true), undefined, false);
    join(duplex, socket);
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

/**
 * Both ways with half-close: the visitor's bytes are piped to the service, the service's are written to the
 * stream as they are read (fromService); either side's end ends only the other's sending side. A side that
 * fails, or closes before both of its directions were done (a reset), destroys the other.
 */
function join(duplex: StreamDuplex, socket: net.Socket): void {
  duplex.onWritable = () => socket.resume();
  socket.on('error', ignoreError);
  socket.once('end', () => duplex.end());
  socket.once('close', () => {
    if (!(socket.readableEnded && socket.writableFinished) && !duplex.destroyed) duplex.destroy();
  });
  duplex.once('close', () => {
    if (!(duplex.readableEnded && duplex.writableFinished) && !socket.destroyed) socket.destroy();
  });
  duplex.pipe(socket);
}
