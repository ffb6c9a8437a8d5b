// A per-root cache of what the file system said: realpath + stat results (including "not found"), the
// symlinks a path goes through, and the bodies of small files. Entries are trusted without a syscall for as
// long as no watched directory reports a change; any change event marks the names it touches, and the next
// lookup drops them before answering. Which symlinks a site follows is the site's choice (index.ts): the
// cache only records where they lead.
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { HttpError } from '../errors.js';
import { adoptBody, releaseBody, type BodyOwner } from './derived.js';
import { LinkAliases, linksOn, NO_LINKS, rebase, type Link, type LinkFacts } from './links.js';
import { isSameOrBelow, isUnder } from './paths.js';
import { DirWatchers, type ChangeSink } from './watch.js';

/** What a lookup found. Immutable apart from the lazily loaded body. */
export interface FileInfo {
  /** The joined path under root (symlinks not resolved): the cache key. */
  readonly path: string;
  /** The resolved path (outside the real root when a symlink on the way leads out of it). */
  readonly real: string;
  /** When `real` is outside the real root: the first symlink on the way (joined under root) that leads out. */
  readonly leavesRootAt: string | undefined;
  /** The first symlink on the way whose owner does not own what it points to. */
  readonly foreignLinkAt: string | undefined;
  readonly isFile: boolean;
  readonly isDir: boolean;
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
  /** Strong validator: `"<mtime ms base36>-<size base36>"`. */
  readonly etag: string;
  /** HTTP date of the mtime. */
  readonly lastModified: string;
  /** Whole content for files up to SMALL_FILE bytes, once something asked for it. */
  body: Buffer | undefined;
}

// Big enough for typical pages, scripts and styles (a 100 KB page answered from memory is ~7x faster than
// streamed from disk on the benchmark machine); the budget bounds the total, bodies and their compressed
// copies (derived.ts) together.
export const SMALL_FILE = 256 * 1024;
const BODY_BUDGET = 64 * 1024 * 1024;
const MAX_ENTRIES = 50_000;
const MAX_WATCHED_DIRS = 4096;
const MAX_LINKS = 4096;
/** Beyond this many changed names before the next lookup, dropping everything is cheaper than sorting out. */
const MAX_DIRTY = 64;
/** A sidecar's change also invalidates its original, so per-file memos of sidecars stay correct. */
const SIDECAR = /\.(?:br|gz|zst)$/;

const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP', 'EINVAL']);

export class FileCache implements ChangeSink, BodyOwner {
  private readonly entries = new Map<string, FileInfo | null>();
  private readonly watchers = new DirWatchers(this, MAX_WATCHED_DIRS);
  private readonly aliases = new LinkAliases(MAX_LINKS);
  private readonly dirty = new Set<string>();
  private readonly renamed = new Set<string>();
  private dirtyAll = false;
  /** Bumped by every change event: a fill that started before it must not be stored. */
  private epoch = 0;
  private realRoot: string | undefined;
  private bodyBytes = 0;
  private readonly rootParent: string;
  private readonly rootName: string;

  constructor(readonly root: string) {
    this.rootParent = path.dirname(root);
    this.rootName = path.basename(root);
  }

  changed(changed: string | undefined, renamed: boolean): void {
    this.epoch++;
    if (changed === undefined) {
      this.dirtyAll = true;
      return;
    }
    this.dirty.add(changed);
    if (renamed) this.renamed.add(changed);
    if (SIDECAR.test(changed)) this.dirty.add(changed.replace(SIDECAR, ''));
    for (const alias of this.aliases.aliasesOf(changed)) {
      this.dirty.add(alias.path);
      if (renamed || alias.replaced) this.renamed.add(alias.path);
    }
  }

  /** The cached answer for a joined path: info, null (known missing) or undefined (not cached). Sync. */
  peek(full: string): FileInfo | null | undefined {
    if (this.dirtyAll || this.dirty.size !== 0) this.flush();
    return this.entries.get(full);
  }

  /** Asks the file system, and caches the answer when the directories involved are watched. */
  async load(full: string): Promise<FileInfo | null> {
    const epoch = this.epoch;
    // The root's parent is watched for the root's own name: a root that is a symlink swapped by a deploy.
    if (this.rootParent !== this.root) this.watchers.add(this.rootParent, this.rootName);
    const realRoot = this.realRoot ?? (await this.resolveRoot());
    if (realRoot === undefined) return null;
    let info: FileInfo | null = null;
    let links = NO_LINKS;
    try {
      const real = await fs.realpath(full);
      const st = await fs.stat(real);
      // Without a symlink below root, the real path is the joined one moved onto the real root.
      if (real !== rebase(this.root, realRoot, full)) links = await linksOn(this.root, full, realRoot);
      info = makeInfo(full, real, st, links, isUnder(realRoot, real));
    } catch (err) {
      if (!NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) throw asHttpError(err);
      links = await this.linksAbove(full, realRoot);
    }
    if (epoch === this.epoch) this.store(full, info, realRoot, links.links);
    return info;
  }

  /** For a missing path: the links on its parent's way (a file may appear in a linked directory). */
  private async linksAbove(full: string, realRoot: string): Promise<LinkFacts> {
    const parent = path.dirname(full);
    if (parent === full || !isUnder(this.root, parent) || parent === this.root) return NO_LINKS;
    try {
      const real = await fs.realpath(parent);
      return real === rebase(this.root, realRoot, parent)
        ? NO_LINKS
        : await linksOn(this.root, parent, realRoot);
    } catch {
      return NO_LINKS; // the parent is missing too: its creation is an event in a watched ancestor
    }
  }

  /** The whole content of a small file (cached within the memory budget), or undefined for others. */
  async body(info: FileInfo): Promise<Buffer | undefined> {
    if (info.body) return info.body;
    if (!info.isFile || info.size > SMALL_FILE) return undefined;
    const epoch = this.epoch;
    let buf: Buffer;
    try {
      buf = await fs.readFile(info.real);
    } catch {
      return undefined; // the caller streams instead, and reports what that finds
    }
    if (buf.length !== info.size) return undefined; // changed under us: not the body this info describes
    if (
      epoch === this.epoch &&
      this.entries.get(info.path) === info &&
      this.bodyBytes + buf.length <= BODY_BUDGET
    ) {
      info.body = buf;
      this.bodyBytes += buf.length;
      adoptBody(buf, this);
    }
    return buf;
  }

  /** Charges a derived copy of a cached body (derived.ts) to the same budget as the bodies. */
  charge(bytes: number): boolean {
    if (this.bodyBytes + bytes > BODY_BUDGET) return false;
    this.bodyBytes += bytes;
    return true;
  }

  /** Drops everything and closes every watcher. */
  clear(): void {
    for (const info of this.entries.values()) if (info?.body) releaseBody(info.body);
    this.entries.clear();
    this.bodyBytes = 0;
    this.realRoot = undefined;
    this.watchers.closeAll();
    this.aliases.clear();
    this.dirty.clear();
    this.renamed.clear();
    this.dirtyAll = false;
  }

  private async resolveRoot(): Promise<string | undefined> {
    const epoch = this.epoch;
    try {
      const real = await fs.realpath(this.root);
      if (epoch === this.epoch) this.realRoot = real;
      return real;
    } catch {
      return undefined;
    }
  }

  private store(full: string, info: FileInfo | null, realRoot: string, links: readonly Link[]): void {
    // The joined path's directories: fs.watch follows symlinks, so these also report changes below a
    // linked directory, under the joined names the entries are keyed by (links.ts says when they go stale).
    if (!this.watchChain(this.root, full)) return;
    if (info && info.real !== full) {
      if (isUnder(realRoot, info.real)) {
        if (!this.watchChain(realRoot, info.real)) return;
      } else if (this.watchers.add(path.dirname(info.real)) === 'failed') return;
    }
    for (const link of links) {
      if (!this.aliases.add(link)) return;
      const parent = path.dirname(link.target);
      if (parent !== link.target && this.watchers.add(parent, path.basename(link.target)) === 'failed')
        return;
    }
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value as string;
      this.forget(oldest);
    }
    this.entries.set(full, info);
  }

  /**
   * Watches every directory from `base` down to the one holding `target`. A directory that does not exist
   * ends the walk: its creation is an event in its (watched) parent. False when a watch could not be set.
   */
  private watchChain(base: string, target: string): boolean {
    let state = this.watchers.add(base);
    if (state !== 'ok') return state === 'missing';
    if (target === base) return true;
    const rel = target.slice(base.length + (base.endsWith('/') ? 0 : 1));
    let dir = base;
    let start = 0;
    for (let slash = rel.indexOf('/'); slash >= 0; slash = rel.indexOf('/', start)) {
      dir = path.join(dir, rel.slice(start, slash));
      start = slash + 1;
      state = this.watchers.add(dir);
      if (state === 'missing') return true;
      if (state === 'failed') return false;
    }
    return true;
  }

  private flush(): void {
    if (this.dirtyAll || this.dirty.size > MAX_DIRTY) {
      this.clear();
      return;
    }
    for (const changed of this.dirty) {
      if (isSameOrBelow(changed, this.root)) this.realRoot = undefined;
      for (const [key, info] of this.entries) {
        if (isSameOrBelow(changed, key) || (info !== null && isSameOrBelow(changed, info.real)))
          this.forget(key);
      }
    }
    // A renamed or deleted directory's watcher follows its inode, or nothing: it vouches for no path now.
    for (const changed of this.renamed) this.watchers.dropBelow(changed);
    this.dirty.clear();
    this.renamed.clear();
  }

  private forget(key: string): void {
    const info = this.entries.get(key);
    if (info?.body) this.bodyBytes -= info.body.length + releaseBody(info.body);
    this.entries.delete(key);
  }
}

function makeInfo(full: string, real: string, st: Stats, links: LinkFacts, inside: boolean): FileInfo {
  const mtimeMs = Math.floor(st.mtimeMs);
  return {
    path: full,
    real,
    // Out and back in again is inside: only where the path ends counts for `symlinks inside`.
    leavesRootAt: inside ? undefined : (links.leavesRootAt ?? full),
    foreignLinkAt: links.foreignLinkAt,
    isFile: st.isFile(),
    isDir: st.isDirectory(),
    size: st.size,
    mtimeMs,
    mode: st.mode,
    etag: `"${mtimeMs.toString(36)}-${st.size.toString(36)}"`,
    lastModified: new Date(mtimeMs).toUTCString(),
    body: undefined,
  };
}

/** Permission → 403; out of descriptors → 503 with Retry-After (as Caddy); anything else stays a 500. */
function asHttpError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return new HttpError(403, undefined, { cause: err });
  if (code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN')
    return new HttpError(503, undefined, { cause: err, headers: { 'Retry-After': '3' } });
  return err;
}
