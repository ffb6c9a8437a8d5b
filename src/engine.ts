// What runs a Config: its listeners and its generations (directive resources, routing tables).
// LocalEngine serves in this process; src/cluster/primary.ts has one that drives worker processes.
// A switch has two phases, so that several processes can switch together or not at all:
// prepare() builds and binds beside the running config, commit() switches, abort() undoes.
import { Generation, type GenerationListener } from './core/generation.js';
import { Listener } from './core/listener.js';
import type { Logger } from './core/logger.js';
import type { Config } from './app.js';
import { buildCertificates, renewMadeCertificates, RENEW_CHECK_MS } from './certs/index.js';
import type { CertificateIndex } from './core/tls/sni.js';

/** What a switch changed, for the "config reloaded" log line. */
export interface ApplySummary {
  sitesAdded: string[];
  sitesRemoved: string[];
  listenersOpened: string[];
  listenersClosed: string[];
}

export interface Engine {
  /** Switches to the config (all or nothing); throws, changing nothing, when it cannot. */
  apply(config: Config): Promise<ApplySummary>;
  /** Bound listeners: configured key → actual port (differs when the Caddyfile asked for port 0). */
  boundPorts(): Map<string, number>;
  /** Stops accepting, drains in-flight requests within graceMs, releases everything. */
  stop(graceMs: number): Promise<void>;
}

/** A config built and bound beside the running one, waiting to be switched to or dropped. */
export interface Prepared {
  /** Ports of every listener of the prepared config (open ones and new ones). */
  readonly ports: Map<string, number>;
  commit(): ApplySummary;
  abort(): Promise<void>;
}

export class LocalEngine implements Engine {
  private readonly listeners = new Map<string, Listener>();
  private current:
    { config: Config; generation: Generation; certs: Map<string, CertificateIndex> } | undefined;
  /** Renews made certificates (self_signed, internal) of the running config before they expire. */
  private renewTimer: NodeJS.Timeout | undefined;
  private generationIds = 0;

  constructor(
    private readonly log: Logger,
    private readonly graceMs: number,
  ) {}

  boundPorts(): Map<string, number> {
    return new Map([...this.listeners].map(([key, l]) => [key, l.port]));
  }

  async apply(config: Config): Promise<ApplySummary> {
    return (await this.prepare(config)).commit();
  }

  /** Starts the config's resources and new listeners; on any failure undoes them and changes nothing. */
  async prepare(config: Config): Promise<Prepared> {
    for (const [key, spec] of config.listeners) {
      const running = this.listeners.get(key);
      if (running && running.secure !== (spec.tls !== undefined))
        throw new Error(
          `port ${spec.port} would switch between HTTP and HTTPS: a reload cannot do that; restart nodecaddy`,
        );
    }
    // Certificates first: a config whose certificates cannot be made changes nothing.
    const certs = await buildCertificates(config.listeners.values(), config.dataDir);
    const listeners = new Map<string, GenerationListener>();
    for (const [key, spec] of config.listeners) {
      const index = certs.get(key);
      listeners.set(key, { sites: spec.sites, tls: spec.tls && index && { certs: index, policy: spec.tls } });
    }
    const generation = new Generation(++this.generationIds, listeners, config.instances, this.log);
    await generation.start();
    const opened: Listener[] = [];
    try {
      for (const [key, spec] of config.listeners) {
        if (this.listeners.has(key)) continue;
        const listener = new Listener(
          key,
          { host: spec.host, port: spec.port, log: this.log, tls: spec.tls !== undefined },
          generation.table(key),
        );
        try {
          await listener.listen();
        } catch (err) {
          // A redirect listener nobody asked for (port 80 without the right to bind it): serve without it.
          if (!spec.optional) throw err;
          this.log.warn(`${(err as Error).message}: no HTTP → HTTPS redirects on port ${spec.port}`);
          await listener.close(0);
          continue;
        }
        opened.push(listener);
      }
    } catch (err) {
      await undo(opened, generation);
      throw err;
    }
    const ports = new Map<string, number>();
    for (const key of config.listeners.keys()) {
      const l = this.listeners.get(key) ?? opened.find((o) => o.key === key);
      if (l) ports.set(key, l.port);
    }
    let settled = false;
    return {
      ports,
      commit: () => {
        if (settled) throw new Error('prepared config already settled');
        settled = true;
        return this.commit(config, generation, opened, certs);
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        await undo(opened, generation);
      },
    };
  }

  /** The switch: synchronous, so no request sees half of it. */
  private commit(
    config: Config,
    generation: Generation,
    opened: Listener[],
    certs: Map<string, CertificateIndex>,
  ): ApplySummary {
    for (const key of config.listeners.keys()) this.listeners.get(key)?.setTable(generation.table(key));
    for (const l of opened) this.listeners.set(l.key, l);
    const closing: Listener[] = [];
    for (const [key, listener] of this.listeners) {
      if (config.listeners.has(key)) continue;
      this.listeners.delete(key);
      closing.push(listener);
    }
    const previous = this.current;
    this.current = { config, generation, certs };
    this.scheduleRenewal();

    const grace = this.graceMs;
    for (const l of closing)
      void l.close(grace).catch((err: unknown) => this.log.error({ err }, 'closing listener failed'));
    if (previous) void previous.generation.retire(grace);

    const before = new Set(previous?.config.sites.map((s) => s.label) ?? []);
    const after = new Set(config.sites.map((s) => s.label));
    return {
      sitesAdded: [...after].filter((s) => !before.has(s)),
      sitesRemoved: [...before].filter((s) => !after.has(s)),
      listenersOpened: opened.map((l) => l.key),
      listenersClosed: closing.map((l) => l.key),
    };
  }

  private scheduleRenewal(): void {
    if (this.renewTimer || this.current?.certs.size === 0) return;
    this.renewTimer = setInterval(() => {
      const certs = this.current?.certs.values() ?? [];
      renewMadeCertificates(certs).then(
        (n) => n > 0 && this.log.info(`renewed ${n} self-signed or local-CA certificate(s)`),
        (err: unknown) => this.log.error({ err }, 'renewing certificates failed'),
      );
    }, RENEW_CHECK_MS);
    this.renewTimer.unref();
  }

  async stop(graceMs: number): Promise<void> {
    clearInterval(this.renewTimer);
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(listeners.map((l) => l.close(graceMs)));
    await this.current?.generation.retire(graceMs);
  }
}

async function undo(opened: readonly Listener[], generation: Generation): Promise<void> {
  await Promise.all(opened.map((l) => l.close(0)));
  await generation.retire(0);
}
