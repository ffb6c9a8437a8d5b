// Finding the instance that holds a tunnel for a visitor whose name no worker here holds: a small in-process
// cache (a holder for a few seconds, "nobody" for one), then one Redis lookup. A cached holder is dropped when
// it answers 'not-here' (it lost the name: look again once), when its relay cannot be reached, and when any
// instance announces that the name moved. While Redis is away, cached routes serve for a grace period; after
// that the answer is 503 'registry unavailable' (a name this instance holds itself still serves).
import type { Readable } from 'node:stream';
import { TunnelError, type Forwarded, type Upstream, type Visitor } from '../../middleware/tunnel/relay.js';
import { RedisUnavailable, type RedisLink } from '../redis.js';
import type { RelayClient } from '../relay/client.js';
import { scripts, type Entry } from './scripts.js';

/** How long a found holder is trusted without asking again. */
export const HOLDER_CACHE_MS = 5_000;
/** How long "nobody holds it" is trusted (a client connecting now is found within this). */
export const MISSING_CACHE_MS = 1_000;
/** While Redis is away, cached routes this old still serve (stale-if-error), then 503. */
export const REGISTRY_GRACE_MS = 60_000;
/** Names remembered at most (visitors can ask for any number of random names). */
const MAX_CACHED = 10_000;

interface Route {
  at: number;
  /** undefined: nobody holds it. */
  holder?: Entry;
  /** The holder's instance key exists. */
  alive: boolean;
}

export class Routes {
  private readonly cache = new Map<string, Route>();
  private readonly pending = new Map<string, Promise<Route>>();

  constructor(
    private readonly redis: RedisLink,
    private readonly instPrefix: string,
  ) {}

  /** The holder of the name, or 'unavailable' when Redis is away and nothing fresh enough is cached. */
  async find(entryKey: string): Promise<Route | 'unavailable'> {
    const cached = this.cache.get(entryKey);
    const now = Date.now();
    if (cached && now - cached.at < (cached.holder ? HOLDER_CACHE_MS : MISSING_CACHE_MS)) return cached;
    try {
      return await this.lookup(entryKey);
    } catch (err) {
      if (!(err instanceof RedisUnavailable)) throw err;
      if (cached && now - cached.at < REGISTRY_GRACE_MS) return cached;
      return 'unavailable';
    }
  }

  drop(entryKey: string): void {
    this.cache.delete(entryKey);
  }

  clear(): void {
    this.cache.clear();
  }

  /** One lookup per name at a time: a burst of visitors for an expired entry waits for the same answer. */
  private lookup(entryKey: string): Promise<Route> {
    let p = this.pending.get(entryKey);
    if (!p) {
      p = this.redis
        .run('tunnel lookup', (c) => scripts.lookup.run(c, [entryKey], [this.instPrefix]))
        .then((reply) => {
          const [raw, alive] = reply as [string, number];
          const route: Route = { at: Date.now(), alive: alive === 1 };
          if (raw) route.holder = JSON.parse(raw) as Entry;
          this.cache.delete(entryKey);
          if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
          this.cache.set(entryKey, route);
          return route;
        })
        .finally(() => this.pending.delete(entryKey));
      this.pending.set(entryKey, p);
    }
    return p;
  }
}

/** What a ClusterRoute needs besides its name. */
export interface RouteContext {
  routes: Routes;
  relay: RelayClient;
  instanceId: string;
}

/** A tunnel name as seen from a process that holds no session for it. */
export class ClusterRoute implements Upstream {
  constructor(
    private readonly c: RouteContext,
    private readonly entryKey: string,
    private readonly siteKey: string,
    private readonly host: string,
    private readonly timeoutMs: number,
    private readonly sibling: Upstream,
  ) {}

  request(fwd: Forwarded, body: Readable | null, visitor: Visitor) {
    return this.go((u) => u.request(fwd, body, visitor), body === null);
  }

  upgrade(fwd: Forwarded, visitor: Visitor) {
    return this.go((u) => u.upgrade(fwd, visitor), true);
  }

  /** `again`: the request can be sent a second time (no body was consumed) after a stale route. */
  private async go<T>(send: (u: Upstream) => Promise<T>, again: boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const route = await this.c.routes.find(this.entryKey);
      if (route === 'unavailable') return send(this.sibling).catch((err) => this.registryDown(err));
      const holder = route.holder;
      if (!holder || holder.i === this.c.instanceId) return send(this.sibling);
      if (!route.alive) {
        throw new TunnelError(
          502,
          'no-tunnel',
          `the instance that held ${this.host} is gone; its tunnel client has to reconnect`,
        );
      }
      try {
        return await send(this.c.relay.upstream(holder.a, this.siteKey, this.host, this.timeoutMs));
      } catch (err) {
        if (!(err instanceof TunnelError) || err.code === 'visitor-gone') throw err;
        // The holder lost the name, cannot be reached or failed: ask the registry next time.
        this.c.routes.drop(this.entryKey);
        if (err.code !== 'not-here') throw err;
        if (attempt > 0 || !again)
          throw new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${this.host}`);
      }
    }
  }

  /** Redis away and no route cached: a name this instance holds still serves; anything else is a 503. */
  private registryDown(err: unknown): never {
    if (err instanceof TunnelError && err.code === 'no-tunnel') {
      throw new TunnelError(
        503,
        'registry-unavailable',
        `the tunnel registry is unreachable: where ${this.host} is held is unknown for now`,
      );
    }
    throw err;
  }
}
