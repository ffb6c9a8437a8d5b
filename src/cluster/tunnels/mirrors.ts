// Mirror listeners (scale.md §6.5): a TCP tunnel's public port P is bound by the process holding the session
// on one instance; every other instance serving the site listens on P too (on the site's bind address) and
// relays each connection to the holder over the cluster relay, so a visitor reaches the tunnel at any
// instance, as for HTTP. The registered ports are learned from the registry (ports.ts) on every
// registration or release message, every few seconds, and whenever Redis is back.
//
// With -workers N, only one process of the instance can bind P (exclusive): in the others it is in use
// and they just skip it.
import net from 'node:net';
import type { Logger } from '../../core/logger.js';
import { clientIp } from '../../core/forwarded.js';
import { ignoreError, joinHalfOpen } from '../../tunnel/transport.js';
import { RedisUnavailable, type RedisLink } from '../redis.js';
import type { RelayClient } from '../relay/client.js';
import { PORT_CHANNEL, portIndexKey } from './ports.js';
import { scripts, type PortEntry } from './scripts.js';

/** How often the registered ports are listed (besides the messages, which may be lost). */
export const MIRROR_SCAN_MS = 3_000;

/** A site of this process with TCP tunnels. */
export interface TcpSite {
  siteKey: string;
  bindHost: string | undefined;
  from: number;
  to: number;
}

interface Mirror {
  entry: PortEntry;
  server: net.Server;
  sockets: Set<net.Socket>;
}

export interface TcpMirrorsOptions {
  redis: RedisLink;
  relay: RelayClient;
  instanceId: string;
  /** The TCP sites this process serves now (they change with reloads). */
  sites: () => TcpSite[];
  log: Logger;
}

export class TcpMirrors {
  /** By `<bind host> <port>`: one listener per address. */
  private readonly mirrors = new Map<string, Mirror>();
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly o: TcpMirrorsOptions) {}

  start(): void {
    void this.o.redis.subscribe(PORT_CHANNEL, () => this.scan());
    this.o.redis.onReady(() => this.scan());
    this.timer = setInterval(() => this.scan(), MIRROR_SCAN_MS);
    this.timer.unref();
    this.scan();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.scanning;
    await Promise.all([...this.mirrors.keys()].map((k) => this.closeMirror(k)));
  }

  /** Lists the registered ports and opens or closes mirrors to match (one listing at a time). */
  private scan(): void {
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.reconcile()
      .catch((err: unknown) => {
        if (!(err instanceof RedisUnavailable)) this.o.log.warn({ err }, 'tunnel TCP mirrors');
      })
      .finally(() => {
        this.scanning = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.scan();
        }
      });
  }

  private async reconcile(): Promise<void> {
    const raw = (await this.o.redis.run('tunnel ports list', (c) =>
      scripts.listPorts.run(c, [portIndexKey(this.o.redis)], []),
    )) as string[];
    if (this.stopped) return;
    const sites = new Map(this.o.sites().map((s) => [s.siteKey, s]));
    const wanted = new Map<string, { entry: PortEntry; site: TcpSite }>();
    for (const json of raw) {
      let entry: PortEntry;
      try {
        entry = JSON.parse(json) as PortEntry;
      } catch {
        continue;
      }
      const site = sites.get(entry.k);
      // Held here (this process or a sibling worker, which binds it itself): nothing to mirror.
      if (!site || entry.i === this.o.instanceId || entry.p < site.from || entry.p > site.to) continue;
      wanted.set(`${site.bindHost ?? ''} ${entry.p}`, { entry, site });
    }
    for (const [key, mirror] of this.mirrors) {
      const w = wanted.get(key);
      if (!w) await this.closeMirror(key);
      else mirror.entry = w.entry;
    }
    for (const [key, { entry, site }] of wanted) {
      if (!this.mirrors.has(key)) await this.openMirror(key, entry, site.bindHost);
    }
  }

  private async openMirror(key: string, entry: PortEntry, bindHost: string | undefined): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true });
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen({ port: entry.p, host: bindHost, exclusive: true }, () => resolve(true));
    });
    // In use: a sibling worker mirrors it, or a local tunnel still has it (its release is on the way).
    if (!bound || this.stopped || this.mirrors.has(key)) {
      if (bound) server.close();
      return;
    }
    server.removeAllListeners('error');
    server.on('error', ignoreError);
    const mirror: Mirror = { entry, server, sockets: new Set() };
    server.on('connection', (socket: net.Socket) => this.relay(mirror, socket));
    this.mirrors.set(key, mirror);
    this.o.log.debug({ port: entry.p, host: entry.h, holder: entry.i }, 'tunnel TCP port mirrored');
  }

  /** One visitor: its bytes wait (paused) until the holder accepted the relayed stream. */
  private relay(mirror: Mirror, socket: net.Socket): void {
    mirror.sockets.add(socket);
    socket.once('close', () => mirror.sockets.delete(socket));
    socket.on('error', ignoreError);
    const { a, k, h, p } = mirror.entry;
    this.o.relay.connectTcp(a, k, h, p, clientIp(socket.remoteAddress)).then(
      (stream) => {
        if (socket.destroyed) {
          stream.destroy();
          return;
        }
        joinHalfOpen(socket, stream);
      },
      () => socket.destroy(),
    );
  }

  private async closeMirror(key: string): Promise<void> {
    const mirror = this.mirrors.get(key);
    if (!mirror) return;
    this.mirrors.delete(key);
    await new Promise<void>((resolve) => {
      mirror.server.close(() => resolve());
      for (const socket of mirror.sockets) socket.destroy();
    });
  }
}
