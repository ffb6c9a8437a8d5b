// redir [<from>] <to> [<code>] | redir [<default code>] { <from> <to> [<code>]… if … if_op … }
// The first rule in order whose `from` is `/` (every path) or exactly the request path, whose scheme fits
// and whose `if` conditions hold, answers with a redirect (or a `meta` refresh page).
import { STATUS_CODES } from '../core/node-http.js';
import type { HttpResponse } from '../core/response.js';
import { posix } from 'node:path';
import type { Middleware } from '../core/chain.js';
import { IfMatcher } from '../core/conditions.js';
import type { RequestContext } from '../core/context.js';
import { defineDirective } from '../core/directive.js';
import { atLine } from '../core/setup-args.js';
import { compileTemplate } from '../core/replacer.js';

const CODES = new Set(['300', '301', '302', '303', '304', '305', '307', '308']);
const FORM = 'redir [<from>] <to> [<code>] or redir [<default code>] { <from> <to> [<code>] }';

interface RedirRule {
  from: string;
  to: string;
  code: number;
  meta: boolean;
  matcher: IfMatcher;
}

export const redir = defineDirective<RedirRule[]>({
  name: 'redir',
  setup(d) {
    const rules: RedirRule[] = [];
    /** Caddy's duplicate check: two rules for one `from` clash unless their block has `if` conditions. */
    const duplicateError = (rule: RedirRule, others: readonly RedirRule[]) => {
      const dup = others.find((r) => r.from === rule.from);
      return dup ? d.err(`rule with duplicate 'from' value: ${dup.from} -> ${dup.to}`) : undefined;
    };
    const init = (args: string[], defaultCode: string, matcher: IfMatcher): RedirRule => {
      let from = '/';
      let to: string;
      let code = defaultCode;
      if (args.length === 1) to = args[0];
      else if (args.length === 2) [from, to] = args;
      else if (args.length === 3) [from, to, code] = args;
      else throw d.err(`wrong number of arguments; expected: ${FORM}`);
      // `meta` may also be the block's default code (Caddy 1.0.5 rejected that by accident).
      const meta = code === 'meta';
      if (meta) code = defaultCode === 'meta' ? '301' : defaultCode;
      if (!CODES.has(code))
        throw d.err(`Invalid redirect code '${code}' (expected 300-305, 307, 308 or meta)`);
      if (from === to) throw d.err("'from' and 'to' values of redirect rule cannot be the same");
      return { from, to, code: Number(code), meta, matcher };
    };
    while (d.next()) {
      const args = d.remainingArgs();
      const matcher = new IfMatcher();
      const blockRules: RedirRule[] = [];
      // Errors are made at the rule's line; whether they apply is known after the block (`if` lines count).
      const duplicates: Error[] = [];
      let hadBlock = false;
      while (d.nextBlock()) {
        const keyword = d.val();
        const rest = d.remainingArgs();
        if (atLine(d, () => matcher.takeLine(keyword, rest))) continue;
        hadBlock = true;
        if (args.length > 1) throw d.err(`a block of rules takes at most a default code; expected: ${FORM}`);
        const defaultCode = args.length === 1 ? args[0] : '301';
        // Validate now (errors point at this line), save after the block: `if` lines anywhere in it count.
        const rule = init([keyword, ...rest], defaultCode, matcher);
        const dup = duplicateError(rule, [...rules, ...blockRules]);
        if (dup) duplicates.push(dup);
        blockRules.push(rule);
      }
      if (!hadBlock) {
        if (args.length === 0) throw d.err(`missing destination; expected: ${FORM}`);
        const rule = init(args, '301', matcher);
        const dup = matcher.enabled ? undefined : duplicateError(rule, rules);
        if (dup) throw dup;
        rules.push(rule);
      } else {
        if (!matcher.enabled && duplicates.length > 0) throw duplicates[0];
        rules.push(...blockRules);
      }
    }
    return rules;
  },
  build(rules, site) {
    // As in Caddy, a rule belongs to its site's scheme: an https site's rules fire only on TLS requests.
    const siteTls = site.address.scheme === 'https';
    const compiled = rules.map((r) => ({ ...r, toTemplate: compileTemplate(r.to) }));
    const middleware: Middleware = (next) => async (ctx) => {
      if (ctx.isTls !== siteTls) return next(ctx);
      for (const rule of compiled) {
        if (rule.from !== '/' && ctx.path !== rule.from) continue;
        if (!rule.matcher.matches(ctx)) continue;
        const to = rule.toTemplate.render(ctx);
        if (rule.meta) writeMeta(ctx.res, to);
        else redirect(ctx, to, rule.code);
        return;
      }
      return next(ctx);
    };
    return { middleware };
  },
});

function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/'/g, '&#39;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&#34;');
}

function writeMeta(res: HttpResponse, to: string): void {
  const safe = escapeHtml(to);
  const body = `<!DOCTYPE html>
<html>
	<head>
		<script>window.location.replace("${safe}");</script>
		<meta http-equiv="refresh" content="0; URL='${safe}'">
	</head>
	<body>Redirecting...</body>
</html>
`;
  res.statusCode = 200;
  if (!res.hasHeader('content-type')) res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Go's http.Redirect: a relative target is resolved against the request path and cleaned. */
function redirect(ctx: RequestContext, target: string, status: number): void {
  const res = ctx.res;
  let url = target;
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(url) && !url.startsWith('//')) {
    const current = ctx.site.config.address.path + ctx.path;
    if (!url.startsWith('/')) url = current.slice(0, current.lastIndexOf('/') + 1) + url;
    const q = url.indexOf('?');
    const query = q < 0 ? '' : url.slice(q);
    let p = q < 0 ? url : url.slice(0, q);
    const trailing = p.endsWith('/');
    p = posix.normalize(p);
    if (trailing && !p.endsWith('/')) p += '/';
    url = p + query;
  }
  // Location must be ASCII: escape anything else as UTF-8 percent codes.
  url = url.replace(/[^\x21-\x7e]+/g, (s) => encodeURIComponent(s));
  const hadType = res.hasHeader('content-type');
  const method = ctx.req.method;
  res.setHeader('Location', url);
  let body: string | undefined;
  if (!hadType && (method === 'GET' || method === 'HEAD'))
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
  if (!hadType && method === 'GET' && status !== 304)
    body = `<a href="${escapeHtml(url)}">${STATUS_CODES[status]}</a>.\n\n`;
  res.statusCode = status;
  if (body !== undefined) res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
