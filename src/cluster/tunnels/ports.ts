// The public TCP ports of a cluster's tunnels (scale.md §6.5): a port a process binds for a TCP tunnel is
// registered as `tp/<site>/<port>` (scripts.ts PortEntry) so that no other instance hands it out, and so that
// every other instance serving the site listens on it too and relays its connections here (mirrors.ts).
// Renewed and released with the tunnel's name (same TTL, same tick).
import type { Logger } from '../../core/logger.js';
import type { ClusterName } from '../../middleware/tunnel/cluster.js';
import { RedisUnavailable, type RedisLink } from '../redis.js';
import { scripts, type PortEntry } from './scripts.js';

/** Pub/sub channel: a port was registered or released (the other instances look again at once). */
export const PORT_CHANNEL = 'tunnel-port';

export function portIndexKey(redis: RedisLink): string {
  return redis.key('tports');
}

interface HeldPort {
  name: ClusterName;
  json: string;
}

export interface HeldPortsOptions {
  redis: RedisLink;
  instanceId: string;
  /** This instance's relay address. */
  address: string;
  /** This process among the instance's workers. */
  owner: string;
  instPrefix: string;
  ttlMs: number;
  /** The registry names another holder for a port of this name: its session must close. */
  lost(name: ClusterName, reason: string): void;
  log: Logger;
}

export class HeldPorts {
  private readonly held = new Map<string, HeldPort>();
  /** Releases that failed while Redis was away (key → the entry as written), done when it is back. */
  private readonly unreleased = new Map<string, string>();

  constructor(private readonly o: HeldPortsOptions) {}

  /** The set of every port entry's key (mirrors.ts lists them). */
  get indexKey(): string {
    return portIndexKey(this.o.redis);
  }

  keyOf(siteKey: string, port: number): string {
    return this.o.redis.key('tp', siteKey, String(port));
  }

  async claim(name: ClusterName, port: number): Promise<'ok' | 'taken' | 'unavailable'> {
    const key = this.keyOf(name.siteKey, port);
    const entry: PortEntry = {
      k: name.siteKey,
      h: name.host,
      p: port,
      i: this.o.instanceId,
      a: this.o.address,
      o: this.o.owner,
    };
    const json = JSON.stringify(entry);
    let ok: unknown;
    try {
      ok = await this.o.redis.run('tunnel port claim', (c) =>
        scripts.claimPort.run(c, [key, this.indexKey], [json, String(this.o.ttlMs), this.o.instPrefix]),
      );
    } catch (err) {
      if (err instanceof RedisUnavailable) return 'unavailable';
      throw err;
    }
    if (ok !== 1) return 'taken';
    this.held.set(key, { name, json });
    this.unreleased.delete(key);
    void this.o.redis.publish(PORT_CHANNEL, key);
    return 'ok';
  }

  async release(name: ClusterName, port: number): Promise<void> {
    const key = this.keyOf(name.siteKey, port);
    const held = this.held.get(key);
    if (!held || held.name.token !== name.token) return;
    this.held.delete(key);
    await this.releaseNow(key, held.json);
  }

  /** Pushes the expiry of every port held here (written again after a Redis restart) and retries releases. */
  async renew(): Promise<void> {
    await Promise.all([...this.unreleased].map(([key, json]) => this.releaseNow(key, json)));
    const held = [...this.held];
    if (held.length === 0) return;
    let results: string[];
    try {
      results = (await this.o.redis.run('tunnel port renew', (c) =>
        scripts.renewPorts.run(
          c,
          [this.indexKey, ...held.map(([key]) => key)],
          [String(this.o.ttlMs), ...held.map(([, h]) => h.json)],
        ),
      )) as string[];
    } catch (err) {
      if (err instanceof RedisUnavailable) return;
      throw err;
    }
    held.forEach(([key, h], k) => {
      if (results[k] !== 'lost' || this.held.get(key) !== h) return;
      this.held.delete(key);
      this.o.log.warn({ host: h.name.host, key }, 'tunnel closed: its TCP port is registered elsewhere now');
      this.o.lost(h.name, 'TCP port taken elsewhere while the registry was unreachable');
    });
  }

  private async releaseNow(key: string, json: string): Promise<void> {
    try {
      const deleted = await this.o.redis.run('tunnel port release', (c) =>
        scripts.releasePort.run(c, [key], [json]),
      );
      this.unreleased.delete(key);
      if (deleted === 1) void this.o.redis.publish(PORT_CHANNEL, key);
    } catch (err) {
      if (!(err instanceof RedisUnavailable)) throw err;
      this.unreleased.set(key, json);
    }
  }
}
