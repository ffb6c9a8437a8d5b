// The tunnels of each site, process-wide and outside any config generation: a reload that keeps the site
// keeps its sessions. A site's entry is reference-counted by the generations using it (start acquires,
// close releases); its sessions close when the last one lets go (the site was removed, or the server stops).
import cluster from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  PeerUpstream,
  bindPeer,
  askEvict,
  socketPath,
  releaseRuntimeDir,
  watchHolder,
  readReports,
  type HolderWatch,
} from './peer.js';
import type { TunnelSession } from './session.js';
import type { TunnelSettings } from './options.js';
import { TunnelError, type Upstream } from './relay.js';
import { tunnelCluster, type ClusterClaim, type ClusterName } from './cluster.js';
import { ignoreError, joinHalfOpen } from '../../tunnel/transport.js';

/** A name being claimed or held in this process: its socket (the lock) and, once connected, its session. */
interface Slot {
  token: string;
  secretId: string;
  server: net.Server;
  session?: TunnelSession;
  /** Registered in the cluster's registry (dropping the slot releases it there). */
  registered?: ClusterName;
  /** Sibling processes serving the name over links of their own (joins): ended when the slot is dropped. */
  watchers: Set<ServerResponse>;
}

/** A join: this process serves a name a sibling holds, over a link of the same client, while the holder holds it. */
interface Joined {
  session?: TunnelSession;
  /** Unset while the holder is being asked. */
  watch?: HolderWatch;
}

/** What a join asks for: 'ok' with the holder's watch, or why not. */
export type JoinResult = { ok: HolderWatch } | { refused: 'already-linked' | 'not-held' | 'taken' };

/** Takes one TCP connection (a relay stream from another instance) for a tunnel's public port. */
export type TcpOpener = (stream: Duplex, remote: string) => void;

/** How often a joined link tells the holder its traffic (when it changed). */
const REPORT_EVERY_MS = 1000;

export class SiteTunnels {
  readonly key: string;
  /** The address the site listens on (its `bind`; undefined: every interface): TCP ports are bound there too. */
  bindHost: string | undefined;
  /** The settings of every generation using the site; the newest started one applies. */
  readonly holders: TunnelSettings[] = [];
  private readonly slots = new Map<string, Slot>();
  private readonly joins = new Map<string, Joined>();

  constructor(key: string) {
    this.key = key;
  }

  get settings(): TunnelSettings {
    return this.holders[this.holders.length - 1];
  }

  /** Where requests for `host` go: the session held here, the worker that holds it, or the instance. */
  upstream(host: string): Upstream {
    const session = this.local(host);
    if (session) return session;
    const timeout = this.settings.responseTimeoutMs;
    const sibling = new PeerUpstream(socketPath(this.settings.runDir, this.key, host), host, timeout);
    return tunnelCluster()?.route(this.key, host, timeout, sibling) ?? sibling;
  }

  /** The link of `host` in this process: the session holding the name, or a join of the same client. */
  private local(host: string): TunnelSession | undefined {
    const held = this.slots.get(host)?.session;
    if (held && !held.closed) return held;
    const joined = this.joins.get(host)?.session;
    return joined && !joined.closed ? joined : undefined;
  }

  /**
   * For a request relayed from another instance: the session of this process, the worker of this instance
   * that holds it ('not-here' if none does), or undefined when this process does not serve the site.
   */
  held(host: string): Upstream {
    const session = this.local(host);
    if (session) return session;
    const file = socketPath(this.settings.runDir, this.key, host);
    const sibling = new PeerUpstream(file, host, this.settings.responseTimeoutMs);
    const notHere = (err: unknown) => {
      if (err instanceof TunnelError && err.code === 'no-tunnel')
        throw new TunnelError(502, 'not-here', `no worker of this instance holds ${host}`);
      throw err;
    };
    return {
      request: (...a) => sibling.request(...a).catch(notHere),
      upgrade: (...a) => sibling.upgrade(...a).catch(notHere),
    };
  }

  /**
   * For a TCP connection relayed from another instance to public port `port` of `host`: the session here, or
   * (the port in the site's range) the process of this instance that listens on it, reached on the port itself.
   */
  heldTcp(host: string, port: number): TcpOpener | undefined {
    const session = this.slots.get(host)?.session;
    if (session && !session.closed)
      return session.tcp?.port === port ? session.openTcp.bind(session) : undefined;
    const range = this.settings.tcpPorts;
    // Only a worker has siblings; a single process without the session says not-here (never connecting to a
    // port it may be mirroring itself, which would send the connection round between instances).
    if (!cluster.isWorker || !range || port < range.from || port > range.to || this.slots.has(host)) {
      return undefined;
    }
    const to =
      this.bindHost && this.bindHost !== '0.0.0.0' && this.bindHost !== '::' ? this.bindHost : '127.0.0.1';
    return (stream) => {
      const socket = net.connect({ port, host: to, allowHalfOpen: true, noDelay: true });
      socket.on('error', ignoreError);
      joinHalfOpen(stream, socket);
    };
  }

  /** For another instance taking the name over for the same client: closes the session here or in a sibling. */
  async evict(host: string, token: string): Promise<boolean> {
    if (this.slots.has(host)) return this.evictHere(host, token);
    const file = socketPath(this.settings.runDir, this.key, host);
    return askEvict(file, token, this.settings.handshakeTimeoutMs);
  }

  /** Closes this process's session of `host` if the same client (token) holds it. */
  private async evictHere(host: string, token: string): Promise<boolean> {
    const slot = this.slots.get(host);
    if (!slot || slot.token !== token) return false;
    await this.drop(host, slot, 'replaced by a reconnect of the same client');
    return true;
  }

  /** Live (or pending) sessions of this process that came with the given secret. */
  countFor(secretId: string): number {
    let n = 0;
    for (const slot of this.slots.values()) if (slot.secretId === secretId) n++;
    return n;
  }

  /**
   * Claims `host` for a client: 'ok' with the slot reserved, or 'taken' when another client (another token)
   * holds it in this or another process (or instance). The same client's stale session is closed and replaced
   * at once. In a cluster the registry may also say 'too-many-sessions' (counted across instances) or
   * 'unavailable'.
   */
  async claim(host: string, token: string, secretId: string): Promise<ClusterClaim> {
    const held = this.slots.get(host);
    if (held) {
      if (held.token !== token) return 'taken';
      await this.drop(host, held, 'replaced by a reconnect of the same client');
    }
    const file = socketPath(this.settings.runDir, this.key, host);
    const handler = {
      upstream: {
        request: (...a: Parameters<Upstream['request']>) => this.localUpstream(host).request(...a),
        upgrade: (...a: Parameters<Upstream['upgrade']>) => this.localUpstream(host).upgrade(...a),
      },
      evict: (who: string) => this.evictHere(host, who),
      watch: (who: string, req: IncomingMessage, res: ServerResponse) => this.watchedBy(host, who, req, res),
    };
    let server = await bindPeer(file, handler);
    if (server === 'taken') {
      if (!(await askEvict(file, token, this.settings.handshakeTimeoutMs))) return 'taken';
      server = await bindPeer(file, handler);
      if (server === 'taken') return 'taken';
    }
    if (this.slots.has(host)) {
      // Another handshake of the same name won the race meanwhile.
      server.close();
      return 'taken';
    }
    const slot: Slot = { token, secretId, server, watchers: new Set() };
    this.slots.set(host, slot);
    const cluster = tunnelCluster();
    if (!cluster) return 'ok';
    const name: ClusterName = { siteKey: this.key, host, token, secretId };
    const lost = (reason: string) => {
      if (this.slots.get(host) === slot) void this.drop(host, slot, reason);
    };
    const result = await cluster.claim(name, this.settings.maxSessions, held !== undefined, lost);
    if (result === 'ok') slot.registered = name;
    if (result !== 'ok' || this.slots.get(host) !== slot) {
      // Refused, or the slot went (the site closed) while the registry answered.
      await this.drop(host, slot, 'claim refused');
      return result === 'ok' ? 'taken' : result;
    }
    return 'ok';
  }

  /** Attaches the connected session to its claimed slot; its end frees the name. */
  attach(host: string, session: TunnelSession): void {
    const slot = this.slots.get(host);
    if (!slot) {
      session.close('site closed');
      return;
    }
    slot.session = session;
    session.onClose((s, reason) => {
      const current = this.slots.get(host);
      if (current?.session === s) void this.drop(host, current, reason);
    });
  }

  /**
   * A sibling's join of the same client: the name stays watched while this process holds it for `token`, and
   * the join's traffic reports count in this session's.
   */
  private watchedBy(host: string, token: string, req: IncomingMessage, res: ServerResponse): boolean {
    const slot = this.slots.get(host);
    const held = slot?.session;
    if (!slot || slot.token !== token || !held || held.closed || held.tcp) return false;
    const join = held.addJoin();
    readReports(req, (traffic) => (join.traffic = traffic));
    req.once('end', () => res.end());
    slot.watchers.add(res);
    res.once('close', () => {
      join.open = false;
      slot.watchers.delete(res);
    });
    return true;
  }

  /**
   * A link of a client that holds `host` in a sibling process: accepted ('ok', with the holder's watch) when
   * the sibling holds it for this same client (token) and this process has no link for it yet.
   */
  async join(host: string, token: string): Promise<JoinResult> {
    const slot = this.slots.get(host);
    if (slot) return { refused: slot.token === token ? 'already-linked' : 'taken' };
    const joined = this.joins.get(host);
    if (joined) return { refused: joined.session?.token === token ? 'already-linked' : 'taken' };
    const entry: Joined = {};
    // Held while the holder answers, so that two joins of one client do not both become links here.
    this.joins.set(host, entry);
    const file = socketPath(this.settings.runDir, this.key, host);
    const watch = await watchHolder(file, token, this.settings.handshakeTimeoutMs);
    if (this.joins.get(host) !== entry || !watch) {
      if (this.joins.get(host) === entry) this.joins.delete(host);
      watch?.close();
      return { refused: 'not-held' };
    }
    entry.watch = watch;
    watch.onEnd(() => {
      if (this.joins.get(host) === entry) this.joins.delete(host);
      entry.session?.close('the client no longer holds the name');
    });
    return { ok: watch };
  }

  /** Attaches the joined link's session; it ends with the holder's watch, and its end frees the entry. */
  attachJoined(host: string, session: TunnelSession, watch: HolderWatch): void {
    const entry = this.joins.get(host);
    if (!entry || entry.watch !== watch) {
      session.close('the client no longer holds the name');
      watch.close();
      return;
    }
    entry.session = session;
    // The holder reports the tunnel's traffic over all links: it hears this link's share once a second.
    let last = '';
    const report = () => {
      const t = session.linkTraffic();
      const key = JSON.stringify(t);
      if (key !== last) watch.report(t);
      last = key;
    };
    const timer = setInterval(report, REPORT_EVERY_MS);
    timer.unref();
    session.onClose((s) => {
      clearInterval(timer);
      report();
      if (this.joins.get(host)?.session === s) this.joins.delete(host);
      watch.close();
    });
  }

  /** A join that failed before its session existed. */
  unjoin(host: string, watch: HolderWatch): void {
    const entry = this.joins.get(host);
    if (entry?.watch === watch && !entry.session) this.joins.delete(host);
    watch.close();
  }

  /** Gives a claimed name back (handshake failed before a session existed). */
  async unclaim(host: string, token: string): Promise<void> {
    const slot = this.slots.get(host);
    if (slot && slot.token === token && !slot.session) await this.drop(host, slot, 'handshake failed');
  }

  private localUpstream(host: string): Upstream {
    const session = this.slots.get(host)?.session;
    if (session && !session.closed) return session;
    return {
      request: () => Promise.reject(noTunnel(host)),
      upgrade: () => Promise.reject(noTunnel(host)),
    };
  }

  private async drop(host: string, slot: Slot, reason: string): Promise<void> {
    if (this.slots.get(host) === slot) this.slots.delete(host);
    if (slot.registered) tunnelCluster()?.release(slot.registered);
    slot.registered = undefined;
    slot.session?.close(reason);
    for (const res of slot.watchers) res.destroy();
    // Done only once the TCP port is free too: a reconnect binds it again right after.
    await Promise.all([
      new Promise<void>((resolve) => slot.server.close(() => resolve())),
      slot.session?.tcp?.close(),
    ]);
  }

  async closeAll(reason: string): Promise<void> {
    for (const [host, entry] of this.joins) {
      this.joins.delete(host);
      entry.session?.close(reason);
      entry.watch?.close();
    }
    await Promise.all([...this.slots].map(([host, slot]) => this.drop(host, slot, reason)));
  }
}

function noTunnel(host: string): TunnelError {
  return new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${host}`);
}

const sites = new Map<string, SiteTunnels>();

/** A generation starts using the site: the entry is created, or kept with the newest settings. */
export function acquireSite(
  key: string,
  settings: TunnelSettings,
  bindHost: string | undefined,
): SiteTunnels {
  let site = sites.get(key);
  if (!site) {
    site = new SiteTunnels(key);
    sites.set(key, site);
  }
  site.bindHost = bindHost;
  site.holders.push(settings);
  return site;
}

/** A generation stops using the site; the last one closes its sessions. */
export async function releaseSite(site: SiteTunnels, settings: TunnelSettings): Promise<void> {
  const i = site.holders.lastIndexOf(settings);
  if (i >= 0) site.holders.splice(i, 1);
  if (site.holders.length > 0 || sites.get(site.key) !== site) return;
  sites.delete(site.key);
  await site.closeAll('server stopped or site removed');
  if (sites.size === 0) releaseRuntimeDir();
}

/** A name of a site this process serves, for a request relayed from another instance (undefined: no such site). */
export function heldTunnel(siteKey: string, host: string): Upstream | undefined {
  return sites.get(siteKey)?.held(host);
}

/** The opener of a TCP connection relayed from another instance to a tunnel's public port (undefined: not here). */
export function heldTcp(siteKey: string, host: string, port: number): TcpOpener | undefined {
  return sites.get(siteKey)?.heldTcp(host, port);
}

/** The sites of this process that have TCP tunnels: the ports other instances hold are listened on here too. */
export function tcpSites(): { siteKey: string; bindHost: string | undefined; from: number; to: number }[] {
  const out = [];
  for (const site of sites.values()) {
    const range = site.settings.tcpPorts;
    if (range) out.push({ siteKey: site.key, bindHost: site.bindHost, from: range.from, to: range.to });
  }
  return out;
}

/** Closes the same client's session of a name for another instance that takes it over. */
export function evictTunnel(siteKey: string, host: string, token: string): Promise<boolean> {
  return sites.get(siteKey)?.evict(host, token) ?? Promise.resolve(false);
}
