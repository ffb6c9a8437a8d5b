// fastcgi <path> <endpoint> [php] { … }: sends matching requests to a FastCGI application (php-fpm) over
// pooled keep-alive connections. Which requests go, and the parameters, follow Caddy v1 (reference 4.19).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Handler } from '../../core/chain.js';
import type { RequestContext } from '../../core/context.js';
import { defineDirective } from '../../core/directive.js';
import { HttpError } from '../../core/errors.js';
import { compilePathMatcher } from '../../core/pathmatch.js';
import { compileTemplate } from '../../core/replacer.js';
import type { SiteConfig } from '../../core/site.js';
import { createPolicy, UpstreamHost, type Policy } from '../../core/upstream/index.js';
import { describe } from './connection.js';
import { forward, type Upstream } from './forward.js';
import { splitEnd, type ParamRule } from './params.js';
import { sharedPool, type PoolHandle } from './pool.js';
import { parseFastcgi, type FastcgiRule } from './setup.js';

/** A connection is closed after its first request past this age: see pool.ts. */
const MAX_AGE_MS = 500;

/** A rule ready to serve: matchers, templates and pools made once per config. */
interface CompiledRule extends ParamRule {
  readonly matches: (p: string) => boolean;
  readonly excepts: readonly ((p: string) => boolean)[];
  readonly ext: string;
  readonly index: readonly string[];
  readonly upstreams: (Upstream & { readonly handle: PoolHandle })[];
  readonly policy: Policy;
  readonly connectTimeoutMs: number;
  readonly timeouts: { readMs: number; sendMs: number };
}

function compile(rule: FastcgiRule, site: Readonly<SiteConfig>): CompiledRule {
  return {
    matches: compilePathMatcher(rule.path),
    excepts: rule.except.map((e) => compilePathMatcher(path.posix.join(rule.path, e))),
    ext: rule.ext,
    index: rule.index,
    split: rule.split,
    caseSensitive: rule.caseSensitive,
    root: rule.root ?? site.root,
    env: rule.env.map(([k, v]) => [k, compileTemplate(v)] as const),
    software: rule.software,
    upstreams: rule.endpoints.map((ep) => {
      const handle = sharedPool(ep, {
        idleTimeoutMs: rule.idleTimeoutMs,
        maxIdle: rule.keepalive,
        maxAgeMs: MAX_AGE_MS,
      });
      return {
        host: new UpstreamHost(describe(ep)),
        get pool() {
          return handle.pool;
        },
        handle,
      };
    }),
    policy: createPolicy(rule.policy, rule.policyArg),
    // 0 means "no timeout" in Caddy; a dial still needs some bound, so it gets the OS's own.
    connectTimeoutMs: rule.connectTimeoutMs || 0,
    timeouts: { readMs: rule.readTimeoutMs, sendMs: rule.sendTimeoutMs },
  };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Cleans `..` and `//` (a script must stay under the root) and keeps a trailing slash. */
function cleanPath(p: string): string {
  if (p.indexOf('//') < 0 && p.indexOf('/.') < 0) return p;
  const cleaned = path.posix.normalize(p);
  return p.endsWith('/') && !cleaned.endsWith('/') ? `${cleaned}/` : cleaned;
}

/** Where `route` may answer later: a file must be looked up first. */
type Routed = string | undefined | Promise<string | undefined>;

/**
 * The script path when this rule takes the request, or undefined when the request passes on.
 * Follows Caddy's order: index file for directories, then split, then "missing file, directory or ext".
 * A request for a `.php` path needs no file lookup and is routed at once, without a promise.
 */
function route(rule: CompiledRule, ctx: RequestContext, siteRoot: string): Routed {
  const current = cleanPath(ctx.path);
  if (!rule.matches(current) || rule.excepts.some((m) => m(current))) return undefined;
  // Trailing spaces and dots would name the same file on some systems and show the source: trim them.
  const lastChar = current.charCodeAt(current.length - 1);
  const fpath = lastChar === 0x20 || lastChar === 0x2e ? current.replace(/[ .]+$/, '') || '/' : current;
  if (fpath.endsWith('/') && rule.index.length > 0) return routeDirectory(rule, fpath, siteRoot);
  return routeFile(rule, fpath, siteRoot);
}

async function routeDirectory(
  rule: CompiledRule,
  dir: string,
  siteRoot: string,
): Promise<string | undefined> {
  let fpath = dir;
  for (const name of rule.index) {
    const candidate = path.posix.join(dir, name);
    if (await exists(path.join(siteRoot, candidate))) {
      if (splitEnd(candidate, rule.split, rule.caseSensitive) < 0)
        throw new HttpError(500, 'configured index file(s) must include split value');
      fpath = candidate;
      break;
    }
  }
  return routeFile(rule, fpath, siteRoot);
}

function routeFile(rule: CompiledRule, fpath: string, siteRoot: string): Routed {
  if (splitEnd(fpath, rule.split, rule.caseSensitive) < 0) return undefined;
  if (fpath.endsWith('/') || (rule.ext !== '' && fpath.toLowerCase().endsWith(rule.ext))) return fpath;
  return exists(path.join(siteRoot, fpath)).then((found) => (found ? undefined : fpath));
}

/** The first rule (from `i`) that takes the request forwards it; none: the next handler. */
function serve(
  rules: readonly CompiledRule[],
  i: number,
  ctx: RequestContext,
  next: Handler,
  root: string,
): Promise<void> {
  for (; i < rules.length; i++) {
    const rule = rules[i];
    const routed = route(rule, ctx, root);
    if (routed === undefined) continue;
    if (typeof routed === 'string') return forward(ctx, rule, routed);
    const from = i + 1;
    return routed.then((fpath): Promise<void> =>
      fpath === undefined ? serve(rules, from, ctx, next, root) : forward(ctx, rule, fpath),
    );
  }
  return next(ctx);
}

export const fastcgi = defineDirective<FastcgiRule[]>({
  name: 'fastcgi',
  setup(d, ctx) {
    return parseFastcgi(d, ctx);
  },
  build(rules, site) {
    const compiled = rules.map((r) => compile(r, site));
    return {
      middleware:
        (next: Handler): Handler =>
        (ctx) => {
          try {
            return serve(compiled, 0, ctx, next, site.root);
          } catch (err) {
            return Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
      start: async () => {
        for (const rule of compiled)
          for (const u of rule.upstreams) {
            u.handle.retain();
            u.host.putInService();
          }
      },
      close: async () => {
        for (const rule of compiled)
          for (const u of rule.upstreams) {
            u.handle.release();
            u.host.takeOutOfService();
          }
      },
    };
  },
});
