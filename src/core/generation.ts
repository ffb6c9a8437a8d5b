// One loaded config while it runs: its directive resources, its routing tables, and the count of requests
// it is still serving. A reload retires the old generation once its last request has finished (or -grace).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpResponse } from './response.js';
import type { Duplex } from 'node:stream';
import type { DirectiveInstance } from './directive.js';
import { dispatch } from './dispatch.js';
import { InFlight } from './inflight.js';
import type { RoutingTable } from './listener.js';
import { listenerSettings } from './listener-settings.js';
import type { Logger } from './logger.js';
import type { Site } from './site.js';
import { VhostRouter } from './vhost.js';
import { upgradeResponse } from './upgrade.js';

/** What a generation serves on one listener. */
export interface GenerationListener {
  readonly sites: readonly Site[];
  /** A TLS listener's certificates and policy. */
  readonly tls?: RoutingTable['tls'];
}

export class Generation {
  readonly id: number;
  private readonly tables = new Map<string, RoutingTable>();
  private readonly instances: readonly DirectiveInstance[];
  private readonly log: Logger;
  private readonly inflight = new InFlight();
  private closed = false;

  constructor(
    id: number,
    listeners: ReadonlyMap<string, GenerationListener>,
    instances: readonly DirectiveInstance[],
    log: Logger,
  ) {
    this.id = id;
    this.instances = instances;
    this.log = log;
    for (const [key, { sites, tls }] of listeners) {
      const router = new VhostRouter(sites);
      this.tables.set(key, {
        router,
        settings: listenerSettings(sites),
        tls,
        serve: (site, req, res) => this.serve(site, req, res),
        serveUpgrade: (site, req, socket, head) => this.serveUpgrade(site, req, socket, head),
      });
    }
  }

  table(key: string): RoutingTable {
    const table = this.tables.get(key);
    if (!table) throw new Error(`no routing table for listener ${key}`);
    return table;
  }

  private serve(site: Site, req: IncomingMessage, res: HttpResponse): void {
    this.inflight.track(res);
    void dispatch(site, req, res, this.log);
  }

  private serveUpgrade(site: Site, req: IncomingMessage, socket: Duplex, head: Buffer): ServerResponse {
    const { res, upgrade } = upgradeResponse(req, socket, head);
    this.inflight.track(res);
    void dispatch(site, req, res, this.log, upgrade);
    return res;
  }

  /** Starts every directive resource; if one fails, closes those already started and rethrows. */
  async start(): Promise<void> {
    const started: DirectiveInstance[] = [];
    try {
      for (const instance of this.instances) {
        await instance.start?.();
        started.push(instance);
      }
    } catch (err) {
      await closeAll(started, this.log);
      throw err;
    }
  }

  /** Waits for in-flight requests (at most graceMs), then releases every resource. Idempotent. */
  async retire(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inflight.drained(graceMs);
    await closeAll(this.instances, this.log);
  }
}

async function closeAll(instances: readonly DirectiveInstance[], log: Logger): Promise<void> {
  const results = await Promise.allSettled(instances.map(async (i) => i.close?.()));
  for (const r of results)
    if (r.status === 'rejected') log.error({ err: r.reason as unknown }, 'closing a directive failed');
}
