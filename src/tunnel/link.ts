// The link a tunnel mux runs over: the WebSocket between the public server and the tunnel client.
import type { Duplex } from 'node:stream';
import { countRead, countSent } from '../core/read-gc.js';
import { Mux } from './mux.js';

/**
 * What a tunnel link needs of a WebSocket: ws's WebSocket (the client dials with it) and the public server's
 * own WsLink (ws-link.ts) both are one. 'message' brings bytes of the link's frame stream (a whole message
 * from ws, a piece of one from WsLink: message boundaries mean nothing to the frames).
 */
export interface LinkSocket {
  readonly readyState: number;
  readonly OPEN: number;
  /** Bytes written and not yet handed to the OS. */
  readonly bufferedAmount: number;
  /** `written` (if given) is called once the OS has the message; with an error, or never, if it will not. */
  send(data: Buffer, written?: (err?: Error | null) => void): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: Buffer) => void): this;
  on(event: 'pong', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'close', listener: () => void): this;
  off(event: 'pong', listener: () => void): this;
}

/** The WebSocket close code for a peer that broke the protocol (RFC 6455 §7.4.1). */
export const PROTOCOL_ERROR_CLOSE = 1002;

/**
 * A mux over a WebSocket. Each flush is a few binary messages (small frames joined, bulk data alone), sent
 * with the connection under the WebSocket (`socket`) corked: one system call. Messages are only chunks of
 * the frame stream. A peer that breaks the protocol is cut (close code 1002, the reason saying how) after
 * `onProtocolError` heard the reason.
 */
export function wsMux(
  ws: LinkSocket,
  socket: Duplex | undefined,
  onProtocolError?: (reason: string) => void,
): Mux {
  const mux = new Mux(
    {
      write(chunks, written) {
        for (const chunk of chunks) countSent(chunk.length);
        // The socket finishes writes in order: the last one's callback says the OS has them all.
        const done =
          written &&
          ((err?: Error | null) => {
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
  ws.on('message', (data: Buffer) => {
    // Socket reads (WsLink's pieces of them, ws's messages): see core/read-gc.ts.
    countRead(data.length);
    mux.receive(data);
  });
  socket?.on('drain', () => mux.drained());
  ws.once('close', () => mux.lost('the tunnel connection closed'));
  return mux;
}
