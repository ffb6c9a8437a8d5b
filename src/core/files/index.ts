// Files under a site root, shared by the file server, browse, rewrite and ext: safe joining, the hidden
// list, the site's symlink rule, and one cache per root (shared by every site and every config generation
// that serves that root).
import type { SiteConfig, SymlinkRule } from '../site.js';
import { FileCache, type FileInfo } from './cache.js';
import { HiddenRules } from './hidden.js';
import { joinUnderRoot } from './paths.js';

export { SMALL_FILE, type FileInfo } from './cache.js';
export { isUnder, joinUnderRoot } from './paths.js';
export { derivedOf, isCachedBody, keepDerived } from './derived.js';

const caches = new Map<string, FileCache>();
/** Distinct refused links reported per site and config; beyond this, refusals are silent. */
const MAX_REPORTED = 1000;

function cacheFor(root: string): FileCache {
  let cache = caches.get(root);
  if (!cache) {
    cache = new FileCache(root);
    caches.set(root, cache);
  }
  return cache;
}

export class SiteFiles {
  private readonly config: Readonly<SiteConfig>;
  private rules: HiddenRules | undefined;
  readonly root: string;
  private readonly cache: FileCache;
  private readonly hidden: ReadonlySet<string>;
  private readonly symlinks: SymlinkRule | undefined;
  /** Links already reported as refused: one log line per link, not one per request. */
  private readonly reported = new Set<string>();

  constructor(config: Readonly<SiteConfig>) {
    this.config = config;
    this.root = config.root;
    this.cache = cacheFor(config.root);
    this.hidden = new Set(config.hiddenFiles);
    this.symlinks = config.symlinks;
  }

  /** The absolute path a decoded request path names under root. Throws HttpError 400/404 for bad paths. */
  join(urlPath: string): string {
    return joinUnderRoot(this.root, urlPath);
  }

  /**
   * What `full` (from join) is: info, or null when it is missing, outside root or hidden. Synchronous when
   * cached, so the hot path allocates no promise: `let f = files.lookup(p); if (f instanceof Promise) f = await f`.
   */
  lookup(full: string): FileInfo | null | Promise<FileInfo | null> {
    const cached = this.cache.peek(full);
    if (cached === undefined) return this.cache.load(full).then((info) => this.visible(info));
    return this.visible(cached);
  }

  /** The whole body of a small file, or undefined (then stream it). */
  body(info: FileInfo): Buffer | Promise<Buffer | undefined> | undefined {
    return info.body ?? this.cache.body(info);
  }

  isHidden(info: FileInfo): boolean {
    if (this.hidden.size !== 0 && (this.hidden.has(info.real) || this.hidden.has(info.path))) return true;
    // Made on first use, when every site of the config has added its files (hideFile), not at build time.
    return (this.rules ??= new HiddenRules(this.config)).hides(info);
  }

  private visible(info: FileInfo | null): FileInfo | null {
    if (info === null || this.isHidden(info)) return null;
    if (this.symlinks !== undefined && this.refusesLink(info, this.symlinks)) return null;
    return info;
  }

  /** `symlinks inside|owner`: whether a link on the path's way breaks the site's rule (reported once). */
  private refusesLink(info: FileInfo, rule: SymlinkRule): boolean {
    const link = rule.mode === 'inside' ? info.leavesRootAt : info.foreignLinkAt;
    if (link === undefined) return false;
    if (!this.reported.has(link) && this.reported.size < MAX_REPORTED) {
      this.reported.add(link);
      const why =
        rule.mode === 'inside'
          ? 'its target is outside the root (symlinks inside)'
          : 'its owner does not own its target (symlinks owner)';
      rule.log.warn({ root: this.root, link }, `symlink refused: ${why}`);
    }
    return true;
  }
}

const perSite = new WeakMap<Readonly<SiteConfig>, SiteFiles>();

/** The SiteFiles of a site config (one per config object, so static and browse share it). */
export function siteFiles(config: Readonly<SiteConfig>): SiteFiles {
  let files = perSite.get(config);
  if (!files) {
    files = new SiteFiles(config);
    perSite.set(config, files);
  }
  return files;
}

/** For tests: forget every cache and close every watcher. */
export function resetFileCaches(): void {
  for (const cache of caches.values()) cache.clear();
  caches.clear();
}
