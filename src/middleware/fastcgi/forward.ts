// One request to the FastCGI upstreams of a rule: pick a host with the shared policies, take a pooled
// connection, build the parameters, read the body through `limits`, run the exchange.
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../core/context.js';
import { hasRequestBody, requestBody } from '../../core/body.js';
import { HttpError } from '../../core/errors.js';
import { selectHost, selectionInput, type Policy, type UpstreamHost } from '../../core/upstream/index.js';
import { ConnectError, type FcgiPool } from './pool.js';
import { exchange, type ExchangeTimeouts } from './exchange.js';
import { buildParams, splitEnd, type ParamRule } from './params.js';
import { encodeRequest } from './protocol.js';
import { spoolBody, spoolLimits, type Spooled } from './spool.js';

export interface Upstream {
  readonly host: UpstreamHost;
  readonly pool: FcgiPool;
}

export interface ForwardRule extends ParamRule {
  readonly upstreams: readonly Upstream[];
  readonly policy: Policy;
  readonly timeouts: ExchangeTimeouts;
  readonly connectTimeoutMs: number;
}

const hosts = new WeakMap<readonly Upstream[], UpstreamHost[]>();

function hostList(upstreams: readonly Upstream[]): UpstreamHost[] {
  let list = hosts.get(upstreams);
  if (!list) hosts.set(upstreams, (list = upstreams.map((u) => u.host)));
  return list;
}

export function forward(ctx: RequestContext, rule: ForwardRule, fpath: string): Promise<void> {
  const method = (ctx.req.method ?? 'GET').toUpperCase();
  // HEAD and OPTIONS never send a body (as Caddy); others send one when the request has one.
  if (method === 'HEAD' || method === 'OPTIONS' || !hasRequestBody(ctx))
    return send(ctx, rule, fpath, undefined, '0');
  return forwardWithBody(ctx, rule, fpath);
}

async function forwardWithBody(ctx: RequestContext, rule: ForwardRule, fpath: string): Promise<void> {
  let body = requestBody(ctx); // a declared length over `limits` throws 413 here, before any connection
  let bodyLength: string;
  let spooled: Spooled | undefined;
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined) bodyLength = declared;
  else {
    spooled = await spoolBody(body, spoolLimits(ctx.maxBodyBytes));
    body = spooled.open();
    bodyLength = String(spooled.length);
  }
  try {
    await send(ctx, rule, fpath, body, bodyLength);
  } finally {
    await spooled?.dispose();
  }
}

/** The upstream for this request: the only one while it is available, else the rule's policy's choice. */
function pick(ctx: RequestContext, rule: ForwardRule): Upstream | undefined {
  const upstreams = rule.upstreams;
  if (upstreams.length === 1) return upstreams[0].host.available() ? upstreams[0] : undefined;
  const picked = selectHost(rule.policy, hostList(upstreams), selectionInput(ctx));
  return picked && upstreams.find((u) => u.host === picked);
}

async function send(
  ctx: RequestContext,
  rule: ForwardRule,
  fpath: string,
  body: Readable | undefined,
  bodyLength: string,
): Promise<void> {
  const head = encodeRequest(
    1,
    buildParams(ctx, rule, fpath, splitEnd(fpath, rule.split, rule.caseSensitive), bodyLength),
    body === undefined,
  );

  const upstream = pick(ctx, rule);
  if (!upstream) throw new HttpError(502, 'no FastCGI upstream available');
  ctx.vars.set('upstream', upstream.host.name);
  const done = upstream.host.acquire();
  try {
    // A pooled connection php-fpm closed a moment ago fails before any answer: a bodiless request is then
    // retried once on a new connection (a streamed body cannot be replayed).
    for (let attempt = 0; ; attempt++) {
      // An idle connection is taken without waiting on a promise (the common case under load).
      let conn = upstream.pool.takeIdle();
      if (conn === undefined)
        try {
          conn = await upstream.pool.acquire(rule.connectTimeoutMs);
        } catch (err) {
          if (!(err instanceof ConnectError)) throw err;
          upstream.host.recordFailure();
          throw new HttpError(502, err.message, { cause: err });
        }
      const reused = conn.completed > 0;
      try {
        await exchange(ctx, conn, upstream.pool, head, body, rule.timeouts, upstream.host.name);
        upstream.host.recordResponse(ctx.res.statusCode);
        return;
      } catch (err) {
        const retry =
          attempt === 0 &&
          reused &&
          !body &&
          !conn.answered &&
          !ctx.res.headersSent &&
          err instanceof HttpError &&
          err.status === 502;
        if (!retry) {
          if (err instanceof HttpError && (err.status === 502 || err.status === 504))
            upstream.host.recordFailure();
          throw err;
        }
      }
    }
  } finally {
    done();
  }
}
