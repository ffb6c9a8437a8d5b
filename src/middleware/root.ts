// root <path>: the site's document root, relative to the process's working directory.
import { statSync } from 'node:fs';
import path from 'node:path';
import { defineDirective } from '../core/directive.js';

export const root = defineDirective<string>({
  name: 'root',
  setup(d, ctx) {
    let dir = ctx.site.root;
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length !== 1) throw d.argErr();
      dir = path.resolve(ctx.cwd, args[0]);
    }
    try {
      if (!statSync(dir).isDirectory()) throw d.err(`Root path is not a directory: ${dir}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      ctx.warn(`Root path does not exist: ${dir}`);
    }
    ctx.site.root = dir;
    return dir;
  },
});
