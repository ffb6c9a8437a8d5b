// The tunnel registry of a cluster, in Redis (scale.md §6.5): which instance holds each tunnel name, kept
// alive by that instance. One per serving process (the single process, or each worker): it registers the
// names of this process's sessions, renews them, and routes requests for names held elsewhere.
//
// Keys, under the storage's hash tag: `inst/<id>` (relay address; TTL 15 s, renewed every 5 s by every process
// of the instance), `t/<site>/<host>` (scripts.ts Entry; TTL 30 s, renewed every 10 s in one script for all of
// a process's names), `s/<site>/<secret id>` (the secret's names, for a cluster-wide max_sessions).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import type { ClusterClaim, ClusterName, TunnelCluster } from '../../middleware/tunnel/cluster.js';
import type { Upstream } from '../../middleware/tunnel/relay.js';
import { RedisUnavailable, type RedisLink } from '../redis.js';
import type { RelayClient } from '../relay/client.js';
import { countClaim, countRenewal } from './metrics.js';
import { HeldPorts } from './ports.js';
import { ClusterRoute, Routes } from './routes.js';
import { scripts, type Entry } from './scripts.js';

export const INSTANCE_TTL_MS = 15_000;
export const ENTRY_TTL_MS = 30_000;
/** The instance key is renewed every tick, the entries every other tick. */
const TICK_MS = 5_000;
/** Pub/sub channel: a name was claimed or released (other instances drop their cached route). */
const CHANNEL = 'tunnel';

interface Held {
  name: ClusterName;
  json: string;
  lost: (reason: string) => void;
}

export interface TunnelRegistryOptions {
  redis: RedisLink;
  relay: RelayClient;
  instanceId: string;
  /** The relay address other instances dial (host:port). */
  address: string;
  log: Logger;
}

export class TunnelRegistry implements TunnelCluster {
  readonly instanceId: string;
  private readonly redis: RedisLink;
  private readonly log: Logger;
  /** This process among the instance's workers: a sibling's late release never deletes our entry. */
  private readonly owner = `${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly held = new Map<string, Held>();
  /** Releases that failed while Redis was away, done when it is back (else the name stays taken 30 s). */
  private readonly unreleased = new Map<string, ClusterName>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly routes: Routes;
  private readonly instKey: string;
  private readonly instPrefix: string;
  private readonly ports: HeldPorts;
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;

  constructor(private readonly o: TunnelRegistryOptions) {
    this.instanceId = o.instanceId;
    this.redis = o.redis;
    this.log = o.log;
    this.instPrefix = this.redis.key('inst', '');
    this.instKey = this.redis.key('inst', o.instanceId);
    this.routes = new Routes(this.redis, this.instPrefix);
    this.ports = new HeldPorts({
      redis: this.redis,
      instanceId: o.instanceId,
      address: o.address,
      owner: this.owner,
      instPrefix: this.instPrefix,
      ttlMs: ENTRY_TTL_MS,
      lost: (name, reason) => this.held.get(this.keysOf(name).entry)?.lost(reason),
      log: this.log,
    });
  }

  /** Subscribes, registers the instance, and renews from now on (again at once whenever Redis is back). */
  start(): void {
    void this.redis.subscribe(CHANNEL, (message) => this.routes.drop(message));
    this.redis.onReady(() => {
      // Messages sent while we were away are lost: forget every cached route.
      this.routes.clear();
      this.track(this.flushReleases().then(() => this.renew(true)));
    });
    this.timer = setInterval(() => this.track(this.renew(++this.ticks % 2 === 0)), TICK_MS);
    this.timer.unref();
  }

  async claim(
    name: ClusterName,
    maxSessions: number,
    reclaim: boolean,
    lost: (reason: string) => void,
  ): Promise<ClusterClaim> {
    const keys = this.keysOf(name);
    const entry: Entry = {
      i: this.o.instanceId,
      a: this.o.address,
      t: name.token,
      s: name.secretId,
      o: this.owner,
    };
    const json = JSON.stringify(entry);
    let takeOver = false;
    for (;;) {
      let reply: [string, string];
      try {
        reply = (await this.redis.run('tunnel claim', (c) =>
          scripts.claim.run(
            c,
            [keys.entry, keys.set],
            [
              json,
              String(ENTRY_TTL_MS),
              String(maxSessions),
              takeOver ? '1' : '0',
              this.instPrefix,
              this.redis.key('s', name.siteKey, ''),
              name.host,
            ],
          ),
        )) as [string, string];
      } catch (err) {
        if (!(err instanceof RedisUnavailable)) throw err;
        countClaim('unavailable');
        if (!reclaim) return 'unavailable';
        // The same client back on the same process: keep serving it; the renewal registers it when Redis is back.
        this.held.set(keys.entry, { name, json, lost });
        return 'ok';
      }
      const [result, current] = reply;
      if (result === 'evict' && !takeOver) {
        // The same client (same token) on another live instance: its old session there is stale. Close it
        // (best effort: an unreachable holder learns at its next renewal), then take the name.
        const holder = JSON.parse(current) as Entry;
        const evicted = await this.o.relay.evict(holder.a, name.siteKey, name.host, name.token);
        this.log.info(
          { host: name.host, from: holder.i, evicted },
          'tunnel name taken over from another instance for the same client',
        );
        takeOver = true;
        continue;
      }
      if (result !== 'ok') {
        const r = result === 'too-many-sessions' ? 'too-many-sessions' : 'taken';
        countClaim(r);
        return r;
      }
      countClaim('ok');
      this.held.set(keys.entry, { name, json, lost });
      this.unreleased.delete(keys.entry);
      void this.redis.publish(CHANNEL, keys.entry);
      return 'ok';
    }
  }

  claimPort(name: ClusterName, port: number): Promise<'ok' | 'taken' | 'unavailable'> {
    return this.ports.claim(name, port);
  }

  releasePort(name: ClusterName, port: number): void {
    this.track(this.ports.release(name, port));
  }

  release(name: ClusterName): void {
    const keys = this.keysOf(name);
    const held = this.held.get(keys.entry);
    if (held?.name.token === name.token) this.held.delete(keys.entry);
    this.track(this.releaseNow(name));
  }

  route(siteKey: string, host: string, responseTimeoutMs: number, sibling: Upstream): Upstream {
    const context = { routes: this.routes, relay: this.o.relay, instanceId: this.o.instanceId };
    const entryKey = this.redis.key('t', siteKey, host);
    return new ClusterRoute(context, entryKey, siteKey, host, responseTimeoutMs, sibling);
  }

  /**
   * Stops renewing, waits for the releases under way (the sessions were closed before) and removes the
   * instance key: a stale entry naming this instance is a 502 at once elsewhere, and its client's reconnect
   * takes the name without trying to evict here.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.inflight]);
    await this.redis.run('tunnel stop', (c) => c.del(this.instKey)).catch(() => undefined);
  }

  private keysOf(name: ClusterName): { entry: string; set: string } {
    return {
      entry: this.redis.key('t', name.siteKey, name.host),
      set: this.redis.key('s', name.siteKey, name.secretId),
    };
  }

  private async releaseNow(name: ClusterName): Promise<void> {
    const keys = this.keysOf(name);
    try {
      const deleted = await this.redis.run('tunnel release', (c) =>
        scripts.release.run(
          c,
          [keys.entry, keys.set],
          [this.o.instanceId, this.owner, name.token, name.host],
        ),
      );
      this.unreleased.delete(keys.entry);
      if (deleted === 1) void this.redis.publish(CHANNEL, keys.entry);
    } catch (err) {
      if (!(err instanceof RedisUnavailable)) throw err;
      this.unreleased.set(keys.entry, name);
    }
  }

  private async flushReleases(): Promise<void> {
    const pending = [...this.unreleased.entries()].filter(([key]) => !this.held.has(key));
    await Promise.all(pending.map(([, name]) => this.releaseNow(name)));
  }

  /** The instance key always; with `entries`, every name this process holds too (one script). */
  private async renew(entries: boolean): Promise<void> {
    if (entries) this.track(this.ports.renew());
    const held = entries ? [...this.held] : [];
    const keys = [this.instKey];
    const args = [JSON.stringify({ relay: this.o.address }), String(INSTANCE_TTL_MS), String(ENTRY_TTL_MS)];
    for (const [entryKey] of held) keys.push(entryKey);
    for (const [, h] of held) {
      keys.push(this.keysOf(h.name).set);
      args.push(h.json, h.name.host);
    }
    let results: string[];
    try {
      results = (await this.redis.run('tunnel renew', (c) => scripts.renew.run(c, keys, args))) as string[];
    } catch (err) {
      if (!(err instanceof RedisUnavailable)) throw err;
      // Logged once by the link; the sessions keep serving (scale.md §6.7).
      if (held.length > 0) countRenewal('failed', held.length);
      return;
    }
    held.forEach(([entryKey, h], k) => {
      const result = results[k] as 'ok' | 'restored' | 'lost';
      countRenewal(result);
      // Released while this renewal was on its way (a NOSCRIPT retry can reorder them): release it again.
      if (result !== 'lost' && !this.held.has(entryKey)) this.track(this.releaseNow(h.name));
      if (result === 'restored') this.log.info({ host: h.name.host }, 'tunnel registered again');
      if (result !== 'lost' || this.held.get(entryKey) !== h) return;
      this.held.delete(entryKey);
      this.log.warn(
        { host: h.name.host },
        'tunnel closed: the registry names another holder (claimed elsewhere while the registry was unreachable)',
      );
      h.lost('name taken elsewhere while the registry was unreachable');
    });
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch((err: unknown) => this.log.warn({ err }, 'tunnel registry'));
    this.inflight.add(t);
    void t.finally(() => this.inflight.delete(t));
  }
}
