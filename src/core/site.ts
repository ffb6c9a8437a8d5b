// What a site is after its directives have configured it. Produced by app.ts from a server block key.
import type { Handler } from './chain.js';
import type { CertSource, SiteTls } from './tls/config.js';
import type { Logger } from './logger.js';

/** A parsed site address `[scheme://][host][:port][/path]`, with defaults filled in. */
export interface SiteAddress {
  /** As written in the Caddyfile (after env substitution). */
  readonly original: string;
  /** `http`, `https` or `` when neither scheme nor a conventional port says. */
  readonly scheme: string;
  /** Lower-cased; IPv6 without brackets; `` or `*` or `0.0.0.0` is a catch-all. */
  readonly host: string;
  /** Decimal port as a string (always filled after defaults). */
  readonly port: string;
  /** Site path prefix (`/blog`), `` for none. */
  readonly path: string;
  /** Neither a port nor a scheme was written: automatic HTTPS may move a public name to the HTTPS port. */
  readonly portDefaulted?: boolean;
}

/** Settings that config-only directives (root, index, bind, limits, timeouts) adjust during setup. */
export interface SiteConfig {
  /** Its scheme becomes `https` when the site turns out to be served over TLS (after every setup ran). */
  address: SiteAddress;
  /** Absolute path of the document root. */
  root: string;
  /** Index file names tried in a directory, in order. */
  indexFiles: string[];
  /** Interface to listen on; undefined = all interfaces. */
  bindHost: string | undefined;
  /**
   * Absolute paths that are never served or listed: the Caddyfile and its imports, and files directives use
   * (htpasswd, logs, keys), added in setup with core/files/hidden.ts hideFile(). Shared by every site of a
   * config: a file one site uses is hidden from all of them.
   */
  hiddenFiles: string[];
  /** `hide` patterns and patterns directives add (see core/files/hidden.ts). */
  hidePatterns?: string[];
  /** `dotfiles allow`: names starting with `.` are served and listed (hidden by default, except `/.well-known/`). */
  dotfiles?: 'allow';
  /** `limits header`: the largest request head (target, header names and values) the site accepts. */
  maxHeaderBytes?: number;
  /** `timeouts`, in ms (0 = none); a missing one means the default. See core/listener-settings.ts. */
  timeouts?: Partial<Record<TimeoutKind, number>>;
  /** `symlinks inside|owner`: the symlinks the file server, browse, rewrite and ext follow (default: all). */
  symlinks?: SymlinkRule;
  /** Name of the Caddyfile this site came from (for messages). */
  readonly sourceFile: string;
  /** The `tls` directive's settings, if the site has one. */
  tls?: SiteTls;
  /** Where the certificate comes from when the site is served over HTTPS (set by app.ts); undefined: plain. */
  certSource?: CertSource;
  /**
   * Names that authenticated tunnel clients claim on this site may have a certificate on demand (the `tunnel`
   * directive sets it): the claim itself is the permission that `ask` gives other on-demand sites.
   */
  onDemandByClaim?: boolean;
}

/** Which symlinks below root a site follows, and where a refused one is reported. */
export interface SymlinkRule {
  /** `inside`: only those whose target stays inside the real root; `owner`: only those owned by their target's owner. */
  readonly mode: 'inside' | 'owner';
  readonly log: Logger;
}

export type TimeoutKind = 'read' | 'header' | 'write' | 'idle';

/** A site ready to serve: its configuration and its composed chain. */
export interface Site {
  readonly config: SiteConfig;
  readonly handler: Handler;
  /** `http://host:port/path` for startup messages. */
  readonly label: string;
  /** Not written in the Caddyfile: made by nodecaddy (the HTTP → HTTPS redirects). */
  readonly implicit?: boolean;
}
