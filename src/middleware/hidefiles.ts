// dotfiles allow|hide and hide <path or glob>…: what the file server and browse never show, besides the files
// the config itself uses. Config only: the rules are applied by the site's files (core/files/hidden.ts).
//
// By default a path with a segment starting with `.` below the root (`/.env`, `/.git/config`, `/.htpasswd`)
// is a 404 and never listed, except `/.well-known/` (ACME challenges, security.txt). `dotfiles allow` serves
// them again. `hide` follows Caddy 2's file_server: a pattern without `/` is a name or glob matched against
// every path segment below the root (`hide *.bak secrets`), one with `/` a file system path (relative to the
// working directory, as `root`): that file, everything below that directory, or a glob over whole paths.
import path from 'node:path';
import { defineDirective } from '../core/directive.js';
import { atLine } from '../core/setup-args.js';
import { escapeGlob, globRegExp, hidePattern } from '../core/files/hidden.js';

export const dotfiles = defineDirective<'allow' | 'hide'>({
  name: 'dotfiles',
  setup(d, ctx) {
    let mode: 'allow' | 'hide' = 'hide';
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length !== 1 || (args[0] !== 'allow' && args[0] !== 'hide'))
        throw d.err('expected: dotfiles allow|hide');
      if (d.nextBlock()) throw d.err('dotfiles takes no block');
      mode = args[0];
    }
    if (mode === 'allow') ctx.site.dotfiles = 'allow';
    else delete ctx.site.dotfiles;
    return mode;
  },
});

export const hide = defineDirective<string[]>({
  name: 'hide',
  setup(d, ctx) {
    const patterns: string[] = [];
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length === 0) throw d.err('expected: hide <path or glob>…');
      if (d.nextBlock()) throw d.err('hide takes no block');
      for (const arg of args) {
        // A name (no `/`) matches segments anywhere; anything else names a place on disk.
        let pattern = arg;
        if (arg.includes('/'))
          pattern = path.isAbsolute(arg) ? path.normalize(arg) : path.join(escapeGlob(ctx.cwd), arg);
        atLine(d, () => globRegExp(pattern), `hide: bad pattern "${arg}": `);
        hidePattern(ctx.site, pattern);
        patterns.push(pattern);
      }
    }
    return patterns;
  },
});
