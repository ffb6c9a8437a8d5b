// The links a tunnel mux runs over: the client's WebSocket, and a unix socket between two worker processes.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { Mux } from './mux.js';

/**
 * A mux over a WebSocket. Each flush is a few binary messages (small frames joined, bulk data alone), sent
 * with the connection under the WebSocket (`socket`) corked: one system call. Messages are only chunks of
 * the frame stream. `fail` closes the WebSocket on a protocol error.
 */
export function wsMux(ws: WebSocket, socket: Duplex | undefined, fail: (reason: string) => void): Mux {
  const mux = new Mux(
    {
      write(chunks) {
        if (chunks.length === 1) {
          ws.send(chunks[0]);
          return;
        }
        socket?.cork();
        for (const c of chunks) ws.send(c);
        socket?.uncork();
      },
      get pendingBytes() {
        return ws.bufferedAmount;
      },
      pause: () => ws.pause(),
      resume: () => ws.resume(),
    },
    fail,
  );
  ws.on('message', (data: Buffer) => mux.receive(data));
  socket?.on('drain', () => mux.drained());
  ws.once('close', () => mux.lost('the tunnel connection closed'));
  return mux;
}

/** A mux over a plain socket (between two worker processes of one server). */
export function socketMux(socket: net.Socket, fail: (reason: string) => void): Mux {
  const mux = new Mux(
    {
      write(chunks) {
        if (chunks.length === 1) {
          socket.write(chunks[0]);
          return;
        }
        socket.cork();
        for (const c of chunks) socket.write(c);
        socket.uncork();
      },
      get pendingBytes() {
        return socket.writableLength;
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    },
    fail,
  );
  socket.on('data', (chunk: Buffer) => mux.receive(chunk));
  socket.on('drain', () => mux.drained());
  socket.once('close', () => mux.lost('the link to the worker holding the tunnel closed'));
  return mux;
}
