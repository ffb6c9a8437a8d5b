// ext <.ext>…: for a path without an extension (and no trailing slash), the first `<path><ext>` that exists
// under the site root becomes the path (clean URLs: /about → /about.html).
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';
import { siteFiles } from '../core/files/index.js';
import { escapeDecodedPath, lookupFile } from '../core/rootfile.js';

export const ext = defineDirective<string[]>({
  name: 'ext',
  setup(d) {
    const exts: string[] = [];
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length === 0) throw d.err('expected: ext <.ext>… (e.g. ext .html .htm)');
      for (const a of args)
        if (!a.startsWith('.') || a.length < 2)
          throw d.err(`invalid extension '${a}' (must start with a dot, e.g. .html)`);
      exts.push(...args);
    }
    return exts;
  },
  build(exts, site) {
    const files = siteFiles(site);
    const middleware: Middleware = (next) => async (ctx) => {
      const p = ctx.path;
      if (p.length > 0 && !p.endsWith('/')) {
        const baseName = p.slice(p.lastIndexOf('/') + 1);
        if (!baseName.includes('.')) {
          for (const e of exts) {
            // Any kind of entry counts, as Caddy's os.Stat does (a directory named `x.d` too).
            if (await lookupFile(files, p + e)) {
              ctx.setUri(escapeDecodedPath(p + e) + (ctx.query ? `?${ctx.query}` : ''));
              break;
            }
          }
        }
      }
      return next(ctx);
    };
    return { middleware };
  },
});
