// mime <.ext> <type> | mime { <.ext> <type>… }: the Content-Type for paths with that extension, set before
// the inner handlers run. The static file server keeps a Content-Type that is already set (as Go's
// ServeContent does), so this overrides its guess. The match is exact and case-sensitive, as in Caddy.
import { posix } from 'node:path';
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';

const FORM = 'mime <.ext> <content-type> or mime { <.ext> <content-type>… }';

export const mime = defineDirective<Map<string, string>>({
  name: 'mime',
  setup(d) {
    const types = new Map<string, string>();
    const add = (ext: string, type: string | undefined) => {
      if (type === undefined) throw d.err(`missing content type for ${ext}; expected: ${FORM}`);
      if (!ext.startsWith('.')) throw d.err(`mime: invalid extension "${ext}" (must start with dot)`);
      if (types.has(ext)) throw d.err(`mime: duplicate extension "${ext}" found`);
      types.set(ext, type);
    };
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 2) throw d.err(`too many arguments; expected: ${FORM}`);
      if (args.length === 1) throw d.err(`missing content type for ${args[0]}; expected: ${FORM}`);
      if (args.length === 2) add(args[0], args[1]);
      let lines = 0;
      while (d.nextBlock()) {
        const ext = d.val();
        const rest = d.remainingArgs();
        if (rest.length !== 1) throw d.err(`expected: <.ext> <content-type>`);
        add(ext, rest[0]);
        lines++;
      }
      if (args.length === 0 && lines === 0) throw d.err(`nothing to map; expected: ${FORM}`);
    }
    return types;
  },
  build(types) {
    const middleware: Middleware = (next) => async (ctx) => {
      const type = types.get(extOf(ctx.path));
      if (type !== undefined) ctx.res.setHeader('Content-Type', type);
      return next(ctx);
    };
    return { middleware };
  },
});

/** Go's path.Ext(path.Clean(p)): from the last dot of the last element, or ''. */
function extOf(p: string): string {
  const clean =
    p.indexOf('//') < 0 && p.indexOf('/.') < 0 && !p.endsWith('/')
      ? p
      : posix.normalize(p).replace(/(?<=.)\/+$/, '');
  const slash = clean.lastIndexOf('/');
  const dot = clean.lastIndexOf('.');
  return dot > slash ? clean.slice(dot) : '';
}
