// What the file server and browse pretend does not exist:
// - files the config itself uses (the Caddyfile and its imports, htpasswd files, log files, TLS keys…), which
//   directives add with hideFile()/hidePattern() during setup, for every site of the config;
// - names starting with `.` below the root (`.env`, `.git/`, `.htpasswd`), except `/.well-known/`, unless the
//   site says `dotfiles allow`;
// - the site's `hide` patterns, read as Caddy 2's file_server reads them: a pattern without `/` is a name (or
//   glob) matched against every path segment below the root; one with `/` is an absolute file system path,
//   hiding that file or everything below that directory, or a glob over whole paths (`*` stops at `/`).
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { SiteConfig } from '../site.js';

/** Hides `file` (absolute, or relative to the working directory) from every site, also before it exists. */
export function hideFile(site: SiteConfig, file: string): void {
  const given = path.resolve(file);
  for (const p of [given, realPathOf(given)]) if (!site.hiddenFiles.includes(p)) site.hiddenFiles.push(p);
}

/** Hides every file a glob over absolute paths matches (e.g. a log file's rotated backups). */
export function hidePattern(site: SiteConfig, pattern: string): void {
  (site.hidePatterns ??= []).push(pattern);
}

/** Glob metacharacters escaped, for building a pattern from a literal path. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * The real path of a file that may not exist yet (a log file before its first line): the real path of the
 * nearest existing directory above it, with the rest of the path appended.
 */
function realPathOf(file: string): string {
  let dir = file;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(dir), ...rest);
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return file;
      rest.unshift(path.basename(dir));
      dir = parent;
    }
  }
}

/** A glob as a RegExp: `*` any run and `?` one character (neither crossing `/`), `[…]` classes, `\` escapes. */
export function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < glob.length) re += escapeRegExp(glob[++i]);
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else re += escapeRegExp(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A path below the root with a segment starting with `.`, other than a leading `.well-known`. */
function isDotPath(below: string): boolean {
  if (below.includes('/.')) return true;
  return below.startsWith('.') && below !== '.well-known' && !below.startsWith('.well-known/');
}

/** Whether the file server and browse must pretend a path does not exist, for one site. Built once per site. */
export class HiddenRules {
  private readonly root: string;
  private readonly files: ReadonlySet<string>;
  private readonly names: readonly RegExp[];
  private readonly paths: readonly { readonly prefix: string; readonly glob: RegExp }[];
  private readonly dotfiles: boolean;

  constructor(config: Readonly<SiteConfig>) {
    this.root = config.root;
    this.files = new Set(config.hiddenFiles);
    const patterns = config.hidePatterns ?? [];
    this.names = patterns.filter((p) => !p.includes('/')).map(globRegExp);
    this.paths = patterns
      .filter((p) => p.includes('/'))
      .map((p) => ({ prefix: p.replace(/(?<=.)\/+$/, ''), glob: globRegExp(p) }));
    this.dotfiles = config.dotfiles !== 'allow';
  }

  /** `path` is the file's path under root (as requested), `real` its resolved path. */
  hides(file: { readonly path: string; readonly real: string }): boolean {
    if (this.files.has(file.path) || this.files.has(file.real)) return true;
    const below = this.below(file.path);
    if (below !== undefined) {
      // On every lookup: no allocation unless there are name patterns.
      if (this.dotfiles && isDotPath(below)) return true;
      if (this.names.length > 0) {
        for (const segment of below.split('/'))
          for (const name of this.names) if (name.test(segment)) return true;
      }
    }
    for (const p of this.paths) {
      for (const candidate of [file.path, file.real]) {
        if (candidate === p.prefix || candidate.startsWith(`${p.prefix}/`)) return true;
        if (p.glob.test(candidate)) return true;
      }
    }
    return false;
  }

  /** The part of `full` below the root, without a leading slash ('' for the root itself). */
  private below(full: string): string | undefined {
    if (full === this.root) return '';
    const base = this.root.endsWith('/') ? this.root : `${this.root}/`;
    return full.startsWith(base) ? full.slice(base.length) : undefined;
  }
}
