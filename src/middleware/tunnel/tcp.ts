// The public port of a TCP tunnel. The process holding the session binds it itself (exclusive, not shared
// through the cluster primary), so every connection lands where the session is, whichever worker took the
// client, and the bind is the lock: no two tunnels, in any worker, get one port.
import net from 'node:net';

export type TcpBindResult = TcpPort | 'taken' | 'full';

export class TcpPort {
  readonly port: number;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> | undefined;

  private constructor(server: net.Server, port: number) {
    this.server = server;
    this.port = port;
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('error', () => undefined);
  }

  /**
   * Binds a port of `range` on `host` (all interfaces when undefined): `wanted` or nothing ('taken'), else
   * `prefer` when free, else the first free one ('full' when none is).
   */
  static async bind(
    range: { from: number; to: number },
    host: string | undefined,
    wanted: number | undefined,
    prefer: number | undefined,
  ): Promise<TcpBindResult> {
    if (wanted !== undefined) {
      const server = await listen(wanted, host);
      return server ? new TcpPort(server, wanted) : 'taken';
    }
    const candidates: number[] = [];
    if (prefer !== undefined && prefer >= range.from && prefer <= range.to) candidates.push(prefer);
    for (let port = range.from; port <= range.to; port++) if (port !== prefer) candidates.push(port);
    for (const port of candidates) {
      const server = await listen(port, host);
      if (server) return new TcpPort(server, port);
    }
    return 'full';
  }

  /** Hands every accepted connection to `accept` (until close). */
  serve(accept: (socket: net.Socket) => void): void {
    this.server.on('connection', accept);
  }

  /** Stops accepting and cuts the open connections; resolves once the port is free again. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
    return this.closing;
  }
}

/** A listening server on the port, or undefined when it is in use (or not ours to bind). */
function listen(port: number, host: string | undefined): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    // Half-open: a visitor that shuts down its sending side still gets the rest of the answer.
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true });
    server.once('error', () => resolve(undefined));
    server.listen({ port, host, exclusive: true }, () => {
      server.removeAllListeners('error');
      resolve(server);
    });
  });
}
