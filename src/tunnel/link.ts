// The link a tunnel mux runs over: the WebSocket between the public server and the tunnel client.
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { Mux } from './mux.js';

/** The WebSocket close code for a peer that broke the protocol (RFC 6455 §7.4.1). */
export const PROTOCOL_ERROR_CLOSE = 1002;

/**
 * A mux over a WebSocket. Each flush is a few binary messages (small frames joined, bulk data alone), sent
 * with the connection under the WebSocket (`socket`) corked: one system call. Messages are only chunks of
 * the frame stream. A peer that breaks the protocol is cut (close code 1002, the reason saying how) after
 * `onProtocolError` heard the reason.
 */
export function wsMux(
  ws: WebSocket,
  socket: Duplex | undefined,
  onProtocolError?: (reason: string) => void,
): Mux {
  const mux = new Mux(
    {
      write(chunks, written) {
        // The socket finishes writes in order: the last one's callback says the OS has them all.
        const done =
          written &&
          ((err?: Error) => {
            if (!err) written();
          });
        const last = chunks.length - 1;
        if (last === 0) {
          ws.send(chunks[0], done);
          return;
        }
        socket?.cork();
        for (let i = 0; i < last; i++) ws.send(chunks[i]);
        ws.send(chunks[last], done);
        socket?.uncork();
      },
      get pendingBytes() {
        return ws.bufferedAmount;
      },
    },
    (reason) => {
      onProtocolError?.(reason);
      // A close reason is at most 123 bytes.
      ws.close(PROTOCOL_ERROR_CLOSE, reason.slice(0, 120));
      // A peer that does not finish the close handshake is cut.
      setTimeout(() => ws.terminate(), 2000).unref();
    },
  );
  ws.on('message', (data: Buffer) => mux.receive(data));
  socket?.on('drain', () => mux.drained());
  ws.once('close', () => mux.lost('the tunnel connection closed'));
  return mux;
}
