// header <path> <Name> [<value>] | header <path> { <Name> [<value>] … }: response headers per path.
// Every rule whose path matches applies, in config order; lines for the same path merge into one rule.
// `-Name` deletions are re-applied just before the headers go out, so headers that inner handlers add
// (a proxied `Server`, say) are removed too.
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';
import {
  applyHeaderRules,
  parseHeaderRule,
  responseHeaderBag,
  type HeaderRule,
} from '../core/headerrules.js';
import { compilePathMatcher } from '../core/pathmatch.js';
import { addResponseFilter } from '../core/response.js';

interface PathRules {
  path: string;
  rules: HeaderRule[];
}

const FORM = 'header <path> <Name> [<value>] or header <path> { <Name> [<value>] … }';

export const header = defineDirective<PathRules[]>({
  name: 'header',
  setup(d) {
    const byPath: PathRules[] = [];
    while (d.next()) {
      if (!d.nextArg()) throw d.err(`missing path; expected: ${FORM}`);
      const path = d.val();
      let entry = byPath.find((e) => e.path === path);
      if (!entry) byPath.push((entry = { path, rules: [] }));
      const lineArgs = d.remainingArgs();
      const add = (args: string[], valueIfMissing: string | undefined) => {
        try {
          entry.rules.push(parseHeaderRule(args, valueIfMissing));
        } catch (err) {
          throw d.err(`${(err as Error).message}; expected: ${FORM}`);
        }
      };
      let lines = 0;
      while (d.nextBlock()) {
        const name = d.val();
        const args = d.remainingArgs();
        if (args.length > 1)
          throw d.err(`more than one value for header ${name}; expected: <Name> [<value>]`);
        add([name, ...args], '');
        lines++;
      }
      if (lineArgs.length > 0) {
        if (lineArgs.length > 2) throw d.err(`too many arguments; expected: ${FORM}`);
        // Caddy's quirk: `header /p Name` without a value sets the header to its own name.
        add(lineArgs, lineArgs[0]);
      } else if (lines === 0) throw d.err(`missing header name; expected: ${FORM}`);
    }
    return byPath;
  },
  build(byPath) {
    const compiled = byPath.map((e) => ({
      matches: compilePathMatcher(e.path),
      rules: e.rules,
      removals: e.rules.filter((r) => r.op === 'remove'),
    }));
    const middleware: Middleware = (next) => async (ctx) => {
      let removals: HeaderRule[] | undefined;
      const bag = responseHeaderBag(ctx.res);
      for (const c of compiled) {
        if (!c.matches(ctx.path)) continue;
        applyHeaderRules(c.rules, ctx, bag);
        if (c.removals.length > 0) (removals ??= []).push(...c.removals);
      }
      if (removals) {
        const toRemove = removals;
        addResponseFilter(ctx.res, {
          head(res) {
            for (const r of toRemove) res.removeHeader(r.name);
          },
        });
      }
      return next(ctx);
    };
    return { middleware };
  },
});
