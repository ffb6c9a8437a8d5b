// The public port of a TCP tunnel. The process holding the session binds it itself (exclusive, not shared
// through the cluster primary), so every connection lands where the session is, whichever worker took the
// client, and the bind is the lock: no two tunnels, in any worker, get one port.
import net from 'node:net';

export type TcpBindResult = TcpPort | 'taken' | 'full' | 'unavailable';

/**
 * In a cluster, a port bound here must also be free across the instances (registered for the site in the
 * registry): 'taken' when another instance holds it, 'unavailable' when the registry cannot say. `release`
 * gives the registration back when the port closes.
 */
export interface PortClaim {
  claim(port: number): Promise<'ok' | 'taken' | 'unavailable'>;
  release(port: number): void;
}

export class TcpPort {
  readonly port: number;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> | undefined;
  private release: (() => void) | undefined;

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
   * `prefer` when free, else the first free one ('full' when none is). With `cluster`, a port is free only
   * when no other instance has it registered either.
   */
  static async bind(
    range: { from: number; to: number },
    host: string | undefined,
    wanted: number | undefined,
    prefer: number | undefined,
    cluster?: PortClaim,
  ): Promise<TcpBindResult> {
    if (wanted !== undefined) {
      const got = await TcpPort.take(wanted, host, cluster);
      return got === 'busy' ? 'taken' : got;
    }
    const candidates: number[] = [];
    if (prefer !== undefined && prefer >= range.from && prefer <= range.to) candidates.push(prefer);
    for (let port = range.from; port <= range.to; port++) if (port !== prefer) candidates.push(port);
    for (const port of candidates) {
      const got = await TcpPort.take(port, host, cluster);
      if (got !== 'busy') return got;
    }
    return 'full';
  }

  /** The port bound here and registered in the cluster, or 'busy' (in use here or elsewhere). */
  private static async take(
    port: number,
    host: string | undefined,
    cluster: PortClaim | undefined,
  ): Promise<TcpPort | 'busy' | 'unavailable'> {
    const server = await listen(port, host);
    if (!server) return 'busy';
    const claimed = cluster ? await cluster.claim(port).catch(() => 'unavailable' as const) : 'ok';
    if (claimed !== 'ok') {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return claimed === 'taken' ? 'busy' : 'unavailable';
    }
    const tcp = new TcpPort(server, port);
    if (cluster) tcp.release = () => cluster.release(port);
    return tcp;
  }

  /** Hands every accepted connection to `accept` (until close). */
  serve(accept: (socket: net.Socket) => void): void {
    this.server.on('connection', accept);
  }

  /** Stops accepting and cuts the open connections; resolves once the port is free again. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.release?.();
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
