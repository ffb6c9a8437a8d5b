// browse [path [template-file]]: lists directories that have no index file, as HTML (the default page or
// a custom template) or as JSON for `Accept: application/json`. Anything that is not such a directory goes
// on to the next handler (the file server).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Middleware } from '../../core/chain.js';
import type { RequestContext } from '../../core/context.js';
import { defineDirective } from '../../core/directive.js';
import { atLine } from '../../core/setup-args.js';
import { HttpError } from '../../core/errors.js';
import { siteFiles, type FileInfo, type SiteFiles } from '../../core/files/index.js';
import { compilePathMatcher, pathMatches } from '../../core/pathmatch.js';
import { DEFAULT_TEMPLATE } from './default-template.js';
import { readItems, sortItems, SORTS } from './listing.js';
import { RenderedListings } from './rendered.js';
import { compileTemplate, type Template, TemplateError } from './template.js';
import { listingJson, listingView, LISTING_SCHEMA } from './view.js';

interface BrowseConfig {
  readonly scope: string;
  readonly template: Template;
}

const defaultTemplate = compileTemplate(DEFAULT_TEMPLATE, LISTING_SCHEMA);

export const browse = defineDirective<BrowseConfig[]>({
  name: 'browse',
  setup(d, ctx) {
    const configs: BrowseConfig[] = [];
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 2) throw d.argErr();
      const scope = args[0] ?? '/';
      if (configs.some((c) => c.scope === scope)) throw d.err(`duplicate browsing config for ${scope}`);
      let template = defaultTemplate;
      if (args[1] !== undefined) {
        const file = path.resolve(ctx.cwd, args[1]);
        const source = atLine(d, () => readFileSync(file, 'utf8'), `cannot read browse template ${file}: `);
        try {
          template = compileTemplate(source, LISTING_SCHEMA);
        } catch (err) {
          if (err instanceof TemplateError) throw d.err(`browse template ${file}: ${err.message}`);
          throw err;
        }
      }
      configs.push({ scope, template });
    }
    return configs;
  },
  build(configs, site) {
    const files = siteFiles(site);
    const indexFiles = [...site.indexFiles];
    const prefix = site.address.path === '/' ? '' : site.address.path;
    const matchers = configs.map((c) => ({
      ...c,
      matches: compilePathMatcher(c.scope),
      rendered: new RenderedListings(),
    }));
    const middleware: Middleware = (next) => async (ctx) => {
      const config = matchers.find((m) => m.matches(ctx.path));
      if (!config) return next(ctx);
      const method = ctx.req.method;
      if (method === 'PROPFIND' || method === 'OPTIONS') throw new HttpError(501);
      if (method !== 'GET' && method !== 'HEAD') return next(ctx);
      let dir = files.lookup(files.join(ctx.path));
      if (dir instanceof Promise) dir = await dir;
      // Files, missing paths, and `/dir` without its slash (the file server redirects) are not ours.
      if (!dir?.isDir || !ctx.path.endsWith('/')) return next(ctx);
      if (await hasIndexFile(files, dir, indexFiles)) return next(ctx);
      return list(ctx, files, dir, config, prefix, configs);
    };
    return { middleware };
  },
});

async function hasIndexFile(files: SiteFiles, dir: FileInfo, names: readonly string[]): Promise<boolean> {
  for (const name of names) {
    let f = files.lookup(path.join(dir.path, name));
    if (f instanceof Promise) f = await f;
    if (f?.isFile) return true;
  }
  return false;
}

async function list(
  ctx: RequestContext,
  files: SiteFiles,
  dir: FileInfo,
  config: BrowseConfig & { readonly rendered: RenderedListings },
  prefix: string,
  all: readonly BrowseConfig[],
): Promise<void> {
  const { req, res } = ctx;
  const query = new URLSearchParams(ctx.query);
  const cookies = parseCookies(req.headers.cookie);
  const cookiePath = prefix + config.scope;
  const secure = ctx.isTls ? '; Secure' : '';
  const setCookies: string[] = [];

  // Caddy v1: an explicit valid value is used and remembered; an empty one falls back to the cookie, then
  // to the default; an unknown sort means the file system's order.
  let sort = query.get('sort') ?? '';
  if (sort === '') sort = cookies.get('sort') ?? 'namedirfirst';
  else if ((SORTS as readonly string[]).includes(sort))
    setCookies.push(`sort=${sort}; Path=${cookiePath}; SameSite=Lax${secure}`);
  let order = query.get('order') ?? '';
  if (order === '') order = cookies.get('order') ?? 'asc';
  else if (order === 'asc' || order === 'desc')
    setCookies.push(`order=${order}; Path=${cookiePath}; SameSite=Lax${secure}`);
  const limitParam = query.get('limit');
  let limit: number | undefined;
  if (limitParam !== null && limitParam !== '') {
    if (!/^[+-]?\d{1,15}$/.test(limitParam)) throw new HttpError(400, 'limit must be an integer');
    limit = Number(limitParam);
  }

  let items;
  try {
    items = await readItems(files, dir.path, dir.real);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new HttpError(403, undefined, { cause: err });
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new HttpError(404, undefined, { cause: err });
    throw err;
  }
  const numDirs = items.filter((i) => i.isDir).length;
  const numFiles = items.length - numDirs;
  sortItems(items, sort, order);
  let limitedTo = 0;
  if (limit !== undefined && limit > 0 && limit <= items.length) {
    items.length = limit;
    limitedTo = limit;
  }

  const json = acceptsJson(req.headers.accept);
  const displayPath = prefix + ctx.path;
  const trimmed = ctx.path.replace(/\/+$/, '');
  const parent = path.posix.dirname(trimmed || '/');
  const canGoUp = trimmed !== '' && all.some((c) => pathMatches(parent, c.scope));
  // Everything the page is made of besides the items (see rendered.ts).
  const key = [json, displayPath, canGoUp, sort, order, limit, numDirs, numFiles].join('\0');
  let body = config.rendered.get(key, items);
  if (!body) {
    const text = json
      ? listingJson(items)
      : config.template.render(
          listingView({
            displayPath,
            canGoUp,
            items,
            numDirs,
            numFiles,
            sort,
            order,
            limitedTo,
            limitParam: limit,
          }),
        );
    body = Buffer.from(text);
    config.rendered.set(key, items, body);
  }
  const type = json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8';
  if (setCookies.length) res.setHeader('Set-Cookie', setCookies);
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    Vary: 'Accept, Cookie',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function acceptsJson(accept: string | undefined): boolean {
  return accept !== undefined && accept.toLowerCase().includes('application/json');
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}
