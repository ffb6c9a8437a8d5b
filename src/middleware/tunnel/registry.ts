// The tunnels of each site, process-wide and outside any config generation: a reload that keeps the site
// keeps its sessions. A site's entry is reference-counted by the generations using it (start acquires,
// close releases); its sessions close when the last one lets go (the site was removed, or the server stops).
import type net from 'node:net';
import { PeerUpstream, bindPeer, askEvict, socketPath, releaseRuntimeDir } from './peer.js';
import type { TunnelSession, TunnelTraffic } from './session.js';
import type { TunnelSettings } from './options.js';
import { TunnelError, type Upstream } from './relay.js';

/** A name being claimed or held in this process: its socket (the lock) and, once connected, its session. */
interface Slot {
  token: string;
  secretId: string;
  server: net.Server;
  session?: TunnelSession;
}

export class SiteTunnels {
  readonly key: string;
  /** The settings of every generation using the site; the newest started one applies. */
  readonly holders: TunnelSettings[] = [];
  private readonly slots = new Map<string, Slot>();

  constructor(key: string) {
    this.key = key;
  }

  get settings(): TunnelSettings {
    return this.holders[this.holders.length - 1];
  }

  /** Where requests for `host` go: the session held here, or the process that holds it. */
  upstream(host: string): Upstream {
    const session = this.slots.get(host)?.session;
    if (session && !session.closed) return session;
    return new PeerUpstream(
      socketPath(this.settings.runDir, this.key, host),
      host,
      this.settings.responseTimeoutMs,
    );
  }

  /** Live (or pending) sessions of this process that came with the given secret. */
  countFor(secretId: string): number {
    let n = 0;
    for (const slot of this.slots.values()) if (slot.secretId === secretId) n++;
    return n;
  }

  /**
   * Claims `host` for a client: 'ok' with the slot reserved, or 'taken' when another client (another token)
   * holds it in this or another process. The same client's stale session is closed and replaced at once.
   */
  async claim(host: string, token: string, secretId: string): Promise<'ok' | 'taken'> {
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
      evict: async (who: string) => {
        const slot = this.slots.get(host);
        if (!slot || slot.token !== who) return false;
        await this.drop(host, slot, 'replaced by a reconnect of the same client');
        return true;
      },
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
    this.slots.set(host, { token, secretId, server });
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
    slot.session?.close(reason);
    // Done only once the TCP port is free too: a reconnect binds it again right after.
    await Promise.all([
      new Promise<void>((resolve) => slot.server.close(() => resolve())),
      slot.session?.tcp?.close(),
    ]);
  }

  /** The traffic of the tunnels this process holds. */
  traffic(): TunnelTraffic[] {
    const out: TunnelTraffic[] = [];
    for (const slot of this.slots.values()) {
      if (slot.session && !slot.session.closed) out.push(slot.session.traffic());
    }
    return out;
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.slots].map(([host, slot]) => this.drop(host, slot, reason)));
  }
}

function noTunnel(host: string): TunnelError {
  return new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${host}`);
}

const sites = new Map<string, SiteTunnels>();

/** A generation starts using the site: the entry is created, or kept with the newest settings. */
export function acquireSite(key: string, settings: TunnelSettings): SiteTunnels {
  let site = sites.get(key);
  if (!site) {
    site = new SiteTunnels(key);
    sites.set(key, site);
  }
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

/**
 * The traffic of every tunnel this process holds (each worker holds its own: add the workers up), for the
 * admin endpoint and metrics: per tunnel its name (public host), requests, TCP connections, bytes in (towards
 * the client) and out, open streams, and since when. `site` is the site's host pattern and path.
 */
export function tunnelTraffic(): (TunnelTraffic & { site: string })[] {
  const out: (TunnelTraffic & { site: string })[] = [];
  for (const site of sites.values()) {
    const pattern = site.key.slice(0, site.key.indexOf('#'));
    for (const t of site.traffic()) out.push({ ...t, site: pattern });
  }
  return out;
}
