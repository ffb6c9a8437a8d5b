// status <code> <path> | status <code> { <path>… }: answer matching paths with a fixed status.
// Below 400 the status is written with an empty body; 400 and up go to the error page (`errors` or the
// default), so `status 404 /secret` hides a path. The longest matching path wins.
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';
import { HttpError } from '../core/errors.js';
import { compilePathMatcher } from '../core/pathmatch.js';

interface StatusRule {
  path: string;
  code: number;
}

const FORM = 'status <code> <path> or status <code> { <path>… }';

export const status = defineDirective<StatusRule[]>({
  name: 'status',
  setup(d) {
    const rules: StatusRule[] = [];
    const addPath = (path: string, code: number) => {
      if (rules.some((r) => r.path === path)) throw d.err(`Duplicate path: '${path}'`);
      rules.push({ path, code });
    };
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length === 0 || args.length > 2) throw d.err(`wrong number of arguments; expected: ${FORM}`);
      if (!/^\d+$/.test(args[0])) throw d.err(`Expecting a numeric status code, got '${args[0]}'`);
      // 1xx are interim responses: they cannot be the answer to a request.
      if (Number(args[0]) < 200 || Number(args[0]) > 999)
        throw d.err(`status code ${args[0]} out of range (200-999); expected: ${FORM}`);
      const code = Number(args[0]);
      let inBlock = 0;
      while (d.nextBlock()) {
        if (args.length === 2) throw d.err(`a path on the line and a block; expected: ${FORM}`);
        if (d.remainingArgs().length > 0) throw d.err('expected one path per line in the block');
        addPath(d.val(), code);
        inBlock++;
      }
      if (args.length === 2) addPath(args[1], code);
      else if (inBlock === 0) throw d.err(`missing path; expected: ${FORM}`);
    }
    return rules;
  },
  build(rules) {
    // Longest path first, so the first match is the longest (Caddy's ConfigSelector).
    const sorted = [...rules]
      .sort((a, b) => b.path.length - a.path.length)
      .map((r) => ({ ...r, matches: compilePathMatcher(r.path) }));
    const middleware: Middleware = (next) => async (ctx) => {
      for (const rule of sorted) {
        if (!rule.matches(ctx.path)) continue;
        if (rule.code >= 400) throw new HttpError(rule.code);
        // Like Go's WriteHeader alone: the status and an empty body.
        ctx.res.statusCode = rule.code;
        if (rule.code !== 204 && rule.code !== 304) ctx.res.setHeader('Content-Length', 0);
        ctx.res.end();
        return;
      }
      return next(ctx);
    };
    return { middleware };
  },
});
