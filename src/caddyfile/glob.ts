// The subset of Go's filepath.Glob that Caddy v1's import uses: `*` and `?` (never crossing a `/`), `\` escapes,
// matches in lexical order per directory, I/O errors while listing ignored. Character classes cannot reach here
// (Caddy refuses a pattern with both `[` and `]` before globbing); a lone `[` is a bad pattern.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

export class BadPatternError extends Error {
  constructor() {
    super('syntax error in pattern');
    this.name = 'BadPatternError';
  }
}

/** Go's hasMeta on Unix. */
export function hasMeta(p: string): boolean {
  return /[*?[\\]/.test(p);
}

/**
 * Refuses what Go's Match would call a bad pattern: a `[` (character classes are not supported here, and a `[`
 * without `]` is malformed anyway) or a trailing `\`. Checked up front so the outcome does not depend on which
 * names a directory holds.
 */
function checkPattern(pattern: string): void {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '[') throw new BadPatternError();
    if (pattern[i] === '\\' && ++i >= pattern.length) throw new BadPatternError();
  }
}

/** Go's filepath.Match for patterns without character classes. `*` and `?` do not match `/`. */
export function match(pattern: string, name: string): boolean {
  checkPattern(pattern);
  const p = [...pattern];
  const n = [...name];
  const at = (pi: number, ni: number): boolean => {
    for (; pi < p.length; pi++, ni++) {
      const c = p[pi];
      if (c === '*') {
        for (let k = ni; k <= n.length; k++) {
          if (at(pi + 1, k)) return true;
          if (k < n.length && n[k] === '/') break;
        }
        return false;
      }
      if (ni >= n.length) return false;
      if (c === '?') {
        if (n[ni] === '/') return false;
      } else if (c === '\\') {
        if (p[++pi] !== n[ni]) return false;
      } else if (c !== n[ni]) {
        return false;
      }
    }
    return ni === n.length;
  };
  return at(0, 0);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function globIn(dir: string, pattern: string, out: string[]): void {
  if (!isDir(dir)) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  names.sort(compareCodePoints);
  for (const n of names) if (match(pattern, n)) out.push(join(dir, n));
}

/** Go's sort.Strings order (UTF-8 byte order = code point order). */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < x.length && i < y.length; i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Go's filepath.Glob: the matching paths, or [] (a plain path is returned if it exists, even as a dangling link). */
export function glob(pattern: string): string[] {
  checkPattern(pattern);
  if (!hasMeta(pattern)) {
    try {
      lstatSync(pattern);
      return [pattern];
    } catch {
      return [];
    }
  }
  const slash = pattern.lastIndexOf(sep);
  let dir = slash === -1 ? '' : pattern.slice(0, slash + 1);
  const file = slash === -1 ? pattern : pattern.slice(slash + 1);
  dir = dir === '' ? '.' : dir === sep ? dir : dir.slice(0, -1);
  const out: string[] = [];
  if (!hasMeta(dir)) {
    globIn(dir, file, out);
    return out;
  }
  if (dir === pattern) throw new BadPatternError();
  for (const d of glob(dir)) globIn(d, file, out);
  return out;
}
