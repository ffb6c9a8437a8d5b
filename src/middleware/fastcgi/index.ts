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

/**
 * The script path when this rule takes the request, or undefined when the request passes on.
 * Follows Caddy's order: index file for directories, then split, then "missing file, directory or ext".
 */
async function route(rule: CompiledRule, ctx: RequestContext, siteRoot: string): Promise<string | undefined> {
  const current = cleanPath(ctx.path);
  if (!rule.matches(current) || rule.excepts.some((m) => m(current))) return undefined;
  // Trailing spaces and dots would name the same file on some systems and show the source: trim them.
  let fpath = current.replace(/[ .]+$/, '') || '/';
  if (fpath.endsWith('/')) {
    for (const name of rule.index) {
      const candidate = path.posix.join(fpath, name);
      if (await exists(path.join(siteRoot, candidate))) {
        if (splitEnd(candidate, rule.split, rule.caseSensitive) < 0)
          throw new HttpError(500, 'configured index file(s) must include split value');
        fpath = candidate;
        break;
      }
    }
  }
  if (splitEnd(fpath, rule.split, rule.caseSensitive) < 0) return undefined;
  if (fpath.endsWith('/') || (rule.ext !== '' && fpath.toLowerCase().endsWith(rule.ext))) return fpath;
  return (await exists(path.join(siteRoot, fpath))) ? undefined : fpath;
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
        async (ctx) => {
          for (const rule of compiled) {
            const fpath = await route(rule, ctx, site.root);
            if (fpath !== undefined) return forward(ctx, rule, fpath);
          }
          return next(ctx);
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
