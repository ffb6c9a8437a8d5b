// The running server: starts a Config, swaps in a new one on reload (all or nothing), stops gracefully.
// What to reload and when lives here; how a config is served lives in the Engine (this process, or workers).
import type { Logger } from './core/logger.js';
import { recordConfigLoaded, recordConfigReload } from './core/metrics/config.js';
import { FileWatcher } from './core/watcher.js';
import { fingerprint, loadConfig, type CaddyfileInput, type Config, type LoadOptions } from './app.js';
import { LocalEngine, type Engine } from './engine.js';

/** Certificates a config needs beyond what it makes itself (automatic HTTPS: src/certs/acme). */
export interface ConfigCertificates {
  /** Before the config serves (start, reload): what storage already holds reaches the server processes. */
  prepare(config: Config): Promise<void>;
  /** The config serves: obtain and renew in the background. */
  commit(config: Config): void;
  stop(): Promise<void>;
}

export interface RuntimeOptions extends LoadOptions {
  /** Automatic HTTPS, when this process is the one that manages certificates. */
  certificates?: ConfigCertificates;
  log: Logger;
  /** Longest wait for in-flight requests when a config or listener goes away (-grace). */
  graceMs: number;
  /** Reads the Caddyfile again for a reload (re-reads the file; or returns the same text for stdin/args). */
  readInput: () => CaddyfileInput;
  /** Reload when the Caddyfile or an imported file changes. */
  watch: boolean;
}

export interface ReloadResult {
  ok: boolean;
  /** False when the content was unchanged and nothing was done. */
  changed: boolean;
  error?: Error;
}

export interface ReloadOptions {
  /** Reload even when nothing changed (SIGUSR1). */
  force: boolean;
  /** What asked for it, for the log. */
  trigger: string;
  /** The Caddyfile to load instead of reading it again (POST /load). */
  input?: CaddyfileInput;
}

export class Runtime {
  private readonly options: RuntimeOptions;
  private readonly log: Logger;
  private readonly engine: Engine;
  private current: Config | undefined;
  private loadedAt = new Date(0);
  /** Reloads run one after another, never overlapping. */
  private reloadQueue: Promise<void> = Promise.resolve();
  private watcher: FileWatcher | undefined;
  private stopped = false;
  /** The last failed reload (input fingerprint and message), so a repeated file event does not log it twice. */
  private lastFailure: { input: string; message: string } | undefined;

  constructor(options: RuntimeOptions, engine?: Engine) {
    this.options = options;
    this.log = options.log;
    this.engine = engine ?? new LocalEngine(options.log, options.graceMs);
  }

  /** Bound listeners: configured key → actual port (differs when the Caddyfile asked for port 0). */
  boundPorts(): Map<string, number> {
    return this.engine.boundPorts();
  }

  /** The config being served and when it was switched to. */
  get running(): { config: Config; loadedAt: Date } | undefined {
    return this.current && { config: this.current, loadedAt: this.loadedAt };
  }

  async start(config: Config): Promise<void> {
    for (const w of config.warnings) this.log.warn(w);
    await this.options.certificates?.prepare(config);
    await this.engine.apply(config);
    this.switched(config);
    this.options.certificates?.commit(config);
    recordConfigLoaded();
    if (this.options.watch) {
      this.watcher = new FileWatcher(() => void this.reload({ force: false, trigger: 'file change' }));
      this.watcher.setFiles(config.files);
      await this.watcher.ready();
    }
  }

  /**
   * Builds the new config beside the running one and switches to it only when all of it succeeded.
   * Reloads never overlap: one that arrives meanwhile runs after the current one. `input` is a Caddyfile
   * given by the admin endpoint (POST /load) instead of reading it again.
   */
  reload(opts: ReloadOptions): Promise<ReloadResult> {
    if (this.stopped)
      return Promise.resolve({ ok: false, changed: false, error: new Error('server is stopping') });
    const run = this.reloadQueue.then(() => this.reloadOnce(opts));
    this.reloadQueue = run.then(
      (r) => {
        if (r.changed) recordConfigReload(r.ok);
      },
      () => undefined,
    );
    return run;
  }

  private async reloadOnce({ force, trigger, input: given }: ReloadOptions): Promise<ReloadResult> {
    let config: Config;
    let inputPrint = '';
    try {
      const input = given ?? this.options.readInput();
      inputPrint = fingerprint(input.text, this.current?.imports ?? []);
      config = loadConfig(input, this.options);
    } catch (err) {
      const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
      if (!force && cause?.code === 'ENOENT' && !inputPrint) {
        // Editors that delete and recreate a file leave it missing for a moment; so does `mv`. Not an error yet.
        this.log.warn(
          { trigger },
          `${(err as Error).message}; still serving the previous config until it is back`,
        );
        return { ok: false, changed: false, error: err as Error };
      }
      // A Caddyfile given by POST /load says nothing about the files: it neither counts as a repeat of a
      // broken save nor widens what the watcher watches.
      if (given) return this.failed(trigger, err as Error, false);
      const message = (err as Error).message;
      const repeated = this.lastFailure?.input === inputPrint && this.lastFailure.message === message;
      this.lastFailure = { input: inputPrint, message };
      if (repeated && !force) return { ok: false, changed: false, error: err as Error };
      return this.failed(trigger, err as Error, true);
    }
    this.lastFailure = undefined;
    if (this.watcher) {
      this.watcher.watchWholeDirs = false;
      this.watcher.setFiles(config.files);
    }
    if (!force && config.fingerprint === this.current?.fingerprint) {
      this.log.info({ trigger }, 'config unchanged, not reloaded');
      return { ok: true, changed: false };
    }
    for (const w of config.warnings) this.log.warn(w);
    try {
      await this.options.certificates?.prepare(config);
      const summary = await this.engine.apply(config);
      this.switched(config);
      this.options.certificates?.commit(config);
      this.log.info({ trigger, ...summary }, 'config reloaded');
      return { ok: true, changed: true };
    } catch (err) {
      return this.failed(trigger, err as Error, false);
    }
  }

  private switched(config: Config): void {
    this.current = config;
    this.loadedAt = new Date();
  }

  private failed(trigger: string, error: Error, brokenEdit: boolean): ReloadResult {
    // After a broken edit, an edit to any file beside the Caddyfile may be the fix (e.g. a new import).
    if (this.watcher && brokenEdit) this.watcher.watchWholeDirs = true;
    this.log.error({ trigger }, `reload failed, still serving the previous config: ${error.message}`);
    return { ok: false, changed: true, error };
  }

  /** Stops accepting, drains in-flight requests within graceMs, releases everything. */
  async stop(graceMs = this.options.graceMs): Promise<void> {
    this.stopped = true;
    await this.watcher?.close();
    await this.reloadQueue;
    await this.options.certificates?.stop();
    await this.engine.stop(graceMs);
  }
}
