// The contract between the core and a directive module. The core never names a directive;
// app.ts walks the ordered registry (src/middleware/index.ts) and calls these.
import type { Dispenser } from '../caddyfile/index.js';
import type { Middleware } from './chain.js';
import type { Logger } from './logger.js';
import type { SiteConfig } from './site.js';

/** What setup sees besides the tokens. */
export interface SetupContext {
  /** The site being configured. Config-only directives (root, index, bind, …) adjust it here. */
  readonly site: SiteConfig;
  /** The process working directory, against which relative paths in directives resolve (as Caddy). */
  readonly cwd: string;
  /** Environment for directives that read it. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Records a non-fatal problem (e.g. a root that does not exist); the app logs it. */
  warn(message: string): void;
  /** The process log, for directives whose running resources report events (e.g. tunnel sessions). */
  readonly log: Logger;
  /**
   * Declares a file the site's config depends on (a certificate, a key): a change to it reloads the config,
   * as a change to the Caddyfile does, and the file server never serves it.
   */
  dependOn(file: string): void;
  /**
   * The process model, which a directive learns here and never from globals. Server processes serving this
   * config (-workers; 1 when one process serves alone).
   */
  readonly workers: number;
  /**
   * A directory shared by all server processes of this nodecaddy (and by other nodecaddy processes given the
   * same NODECADDY_RUN_DIR), for unix sockets between them; undefined when nothing is shared.
   */
  readonly runDir: string | undefined;
  /** nodecaddy's version (SERVER_SOFTWARE and the like). */
  readonly version: string;
}

/** What a directive contributes to a running config. Nothing here has started until start() is called. */
export interface DirectiveInstance {
  readonly middleware?: Middleware;
  /** Opens timers, sockets, files. Called once, before the config takes traffic. */
  start?(): Promise<void>;
  /** Releases everything start() opened. Called once, after the config's last in-flight request (or -grace). */
  close?(): Promise<void>;
}

export interface Directive<Options = unknown> {
  readonly name: string;
  /**
   * Parses every occurrence of the directive in one site block (the Dispenser walks all of them in file
   * order). Pure apart from adjusting ctx.site; throws a CaddyfileError (file:line) on bad input.
   */
  setup(d: Dispenser, ctx: SetupContext): Options;
  /** Builds the middleware and resources for the site, after every directive's setup has run. */
  build?(options: Options, site: Readonly<SiteConfig>): DirectiveInstance;
}

/** Erases a directive's option type so directives of different kinds fit in one registry list. */
export function defineDirective<O>(directive: Directive<O>): Directive<unknown> {
  return directive;
}
