// rewrite [not] <regex> <to>… | rewrite [<base>] { r|regexp <regex>  ext <ext>…  to <dest>…  if …  if_op … }
// Changes the URI that later middleware see (ctx.setUri); `{uri}`/`{path}` keep showing the original,
// `{rewrite_uri}`/`{rewrite_path}` the new one. Only one rule applies per request: among those that match,
// the one with the longest base path (simple rules count as `/`), the first on a tie.
import path from 'node:path';
import type { Middleware } from '../core/chain.js';
import { compileGoRegExp, IfMatcher } from '../core/conditions.js';
import type { RequestContext } from '../core/context.js';
import { defineDirective } from '../core/directive.js';
import { atLine } from '../core/setup-args.js';
import { compilePathMatcher } from '../core/pathmatch.js';
import { compileTemplate, type Template } from '../core/replacer.js';
import { siteFiles } from '../core/files/index.js';
import { escapeDecodedPath, lookupFile } from '../core/rootfile.js';

const SIMPLE_FORM = 'rewrite [not] <regex> <to>…';
const BLOCK_FORM = 'rewrite [<base>] { r <regex>  ext <ext>…  to <dest>…  if <a> <op> <b>  if_op and|or }';

const BLOCK_KEYS = ['r', 'regexp', 'ext', 'to', 'if', 'if_op'];

interface RuleOptions {
  base: string;
  pattern: RegExp | undefined;
  negate: boolean;
  exts: string[];
  to: string[];
  matcher: IfMatcher | undefined;
}

export const rewrite = defineDirective<RuleOptions[]>({
  name: 'rewrite',
  setup(d) {
    const rules: RuleOptions[] = [];
    const regex = (source: string) =>
      atLine(d, () => compileGoRegExp(source), `invalid regular expression '${source}': `);
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length >= 2) {
        const negate = args[0] === 'not';
        const rest = negate ? args.slice(1) : args;
        if (rest.length < 2) throw d.err(`missing destination; expected: ${SIMPLE_FORM}`);
        rules.push({
          base: '/',
          pattern: regex(rest[0]),
          negate,
          exts: [],
          to: splitFields(rest.slice(1)),
          matcher: undefined,
        });
        if (d.nextBlock()) throw d.err(`the one-line form takes no block; expected: ${SIMPLE_FORM}`);
        continue;
      }
      const rule: RuleOptions = {
        base: args[0] ?? '/',
        pattern: undefined,
        negate: false,
        exts: [],
        to: [],
        matcher: new IfMatcher(),
      };
      while (d.nextBlock()) {
        const key = d.val();
        if (!BLOCK_KEYS.includes(key)) throw d.unknownSubdirective(BLOCK_KEYS);
        const values = d.remainingArgs();
        if (atLine(d, () => rule.matcher!.takeLine(key, values))) continue;
        if (key === 'r' || key === 'regexp') {
          if (values.length !== 1) throw d.err(`expected: ${key} <regex>`);
          rule.pattern = regex(values[0]);
        } else if (key === 'to') {
          if (values.length === 0) throw d.err('expected: to <destination>…');
          rule.to = splitFields(values);
        } else {
          if (values.length === 0) throw d.err('expected: ext <.ext>… (/ = no extension, !.ext = exclude)');
          for (const v of values)
            if ((v.length < 2 || (v.length < 3 && v[0] === '!')) && v !== '/' && v !== '!/')
              throw d.err(`invalid extension ${v}`);
          rule.exts = values;
        }
      }
      if (rule.to.length === 0) throw d.err(`missing 'to'; expected: ${BLOCK_FORM}`);
      if (!rule.matcher!.enabled) rule.matcher = undefined;
      rules.push(rule);
    }
    return rules;
  },
  build(options, site) {
    const rules = options.map((o) => ({
      ...o,
      inBase: compilePathMatcher(o.base),
      // Where the regex starts reading: the path with the base stripped, keeping its leading `/`.
      skip: o.base.endsWith('/') ? o.base.length - 1 : o.base.length,
      to: o.to.map((t) => compileTemplate(t)),
    }));
    const files = siteFiles(site);
    const prefix = site.address.path === '/' ? '' : site.address.path;

    /** Caddy's candidate check: a trailing `/` asks for a directory, anything else for a file. */
    const exists = async (candidate: string) => {
      const info = await lookupFile(files, candidate);
      if (!info) return false;
      return candidate.endsWith('/') ? info.isDir : !info.isDir;
    };

    const middleware: Middleware = (next) => async (ctx) => {
      let chosen: (typeof rules)[number] | undefined;
      let captures: RegExpExecArray | null = null;
      for (const rule of rules) {
        if (chosen && rule.base.length <= chosen.base.length) continue;
        if (!rule.inBase(ctx.path)) continue;
        if (rule.exts.length > 0 && !extMatches(rule.exts, ctx.path)) continue;
        if (rule.matcher && !rule.matcher.matches(ctx)) continue;
        let m: RegExpExecArray | null = null;
        if (rule.pattern) {
          m = rule.pattern.exec(ctx.path.slice(rule.skip));
          if (rule.negate ? m !== null : m === null) continue;
        }
        chosen = rule;
        captures = m;
      }
      if (chosen && (await apply(ctx, chosen.to, captures))) return;
      return next(ctx);
    };

    /** Rewrites the URI; true when it answered a redirect instead. */
    async function apply(ctx: RequestContext, to: readonly Template[], m: RegExpExecArray | null) {
      if (m)
        for (let i = 1; i < m.length; i++)
          ctx.vars.set(String(i), (m[i] ?? '').replace(/\?/g, '%3F').replace(/#/g, '%23'));
      let target = '';
      // Caddy's quirk, kept: a query from an earlier, rejected candidate carries over.
      let query = '';
      let found = false;
      for (const t of to) {
        const rendered = t.render(ctx);
        const q = rendered.indexOf('?');
        const rawPath = q < 0 ? rendered : rendered.slice(0, q);
        if (q >= 0) query = rendered.slice(q + 1);
        target = path.posix.normalize(rawPath || '.');
        if (target === '.') target = '/';
        if (rawPath.endsWith('/') && !target.endsWith('/')) target += '/';
        target = stripSitePrefix(target, prefix);
        if ((found = await exists(target))) break;
      }
      // The request's own path as a directory (`{path}/`), asked for without the slash: redirect, as Caddy 2
      // and nginx do, so that the page's relative links resolve (`/wp-admin` must not render the dashboard).
      if (found && target.endsWith('/') && !ctx.path.endsWith('/') && target === `${cleanPath(ctx.path)}/`)
        return redirectToDirectory(ctx, prefix, target);
      ctx.setUri(escapeDecodedPath(target) + (query ? `?${query}` : ctx.query ? `?${ctx.query}` : ''));
      return false;
    }
    return { middleware };
  },
});

function cleanPath(p: string): string {
  const clean = path.posix.normalize(p);
  return clean === '.' ? '/' : clean;
}

/** 301 to the directory's slash form with the site prefix and the request's query; true (answered). */
function redirectToDirectory(ctx: RequestContext, prefix: string, dir: string): true {
  // Encoded as a URL path; leading slashes collapsed so that `//host/` can never become an off-site Location.
  const encoded = encodeURI(prefix + dir.replace(/^\/+/, '/'))
    .replace(/\?/g, '%3F')
    .replace(/#/g, '%23');
  ctx.res.writeHead(301, { Location: ctx.query ? `${encoded}?${ctx.query}` : encoded, 'Content-Length': 0 });
  ctx.res.end();
  return true;
}

/** `to` values are split at whitespace, as Caddy does (a quoted `a b` is two candidates). */
function splitFields(values: readonly string[]): string[] {
  return values.join(' ').split(/\s+/).filter(Boolean);
}

/** Caddy's `ext` test: positive entries must include the path's extension, `!` entries exclude one. */
function extMatches(exts: readonly string[], urlPath: string): boolean {
  const trimmed = urlPath.replace(/\/+$/, '');
  const baseName = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  const dot = baseName.lastIndexOf('.');
  const ext = dot < 0 ? '/' : baseName.slice(dot);
  let mustUse = false;
  for (const entry of exts) {
    const use = entry[0] !== '!';
    const value = use ? entry : entry.slice(1);
    if (use) mustUse = true;
    if (ext === value) return use;
  }
  return !mustUse;
}

/** Destinations are paths as Caddy writes them (with the site prefix, as `{path}` shows); ours lack it. */
function stripSitePrefix(p: string, prefix: string): string {
  if (!prefix || !p.startsWith(prefix)) return p;
  const rest = p.slice(prefix.length);
  if (rest === '') return '/';
  return rest.startsWith('/') ? rest : p;
}
