// symlinks follow|inside|owner: which symlinks below the site root are followed. `follow` (the default, as
// Caddy and nginx) follows every one; `inside` only those whose target stays inside the root; `owner` only
// those owned by the owner of their target (nginx's `disable_symlinks if_not_owner`). A request path never
// leaves the root by `..` or encodings, whatever the rule: that is joinUnderRoot's job.
import { defineDirective } from '../core/directive.js';

const MODES = ['follow', 'inside', 'owner'] as const;
type Mode = (typeof MODES)[number];

export const symlinks = defineDirective<Mode>({
  name: 'symlinks',
  setup(d, ctx) {
    let mode: Mode = 'follow';
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length !== 1 || !(MODES as readonly string[]).includes(args[0]))
        throw d.err(`expected: symlinks follow|inside|owner`);
      mode = args[0] as Mode;
      if (d.nextBlock()) throw d.err('symlinks takes no block');
    }
    ctx.site.symlinks = mode === 'follow' ? undefined : { mode, log: ctx.log };
    return mode;
  },
});
