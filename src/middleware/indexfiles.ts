// index <file>...: names tried in a directory; every `index` line adds to a list that replaces the default.
import { defineDirective } from '../core/directive.js';

export const index = defineDirective<string[]>({
  name: 'index',
  setup(d, ctx) {
    const names: string[] = [];
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length === 0) throw d.err('Expected at least one index');
      for (const name of args) {
        if (name.includes('/') || name === '.' || name === '..')
          throw d.err(`Invalid index file name '${name}'`);
      }
      names.push(...args);
    }
    ctx.site.indexFiles = names;
    return names;
  },
});
