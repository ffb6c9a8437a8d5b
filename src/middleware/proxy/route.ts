// One `proxy` line at run time: which requests it takes, and how one request is forwarded — host selection,
// retries within try_duration, passive failure counting, and the 502/504 that end a failed request.
import type { OutgoingHttpHeaders } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { hasRequestBody, requestBody } from '../../core/body.js';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import { clientIp, connectionTokens, setForwardedHeaders, withoutHopByHop } from '../../core/forwarded.js';
import { applyHeaderRules, objectHeaderBag } from '../../core/headerrules.js';
import { compilePathMatcher } from '../../core/pathmatch.js';
import {
  createPolicy,
  selectHost,
  selectionInput,
  type Policy,
  type UpstreamHost,
} from '../../core/upstream/index.js';
import { replayable } from '../../core/h1/request.js';
import { Backend } from './backend.js';
import type { ProxyConfig } from './config.js';
import { attempt, readAll, type AttemptOptions, type AttemptResult, type BodySource } from './forward.js';
import { HealthChecker } from './health.js';
import { copyResponseHead, spliceUpgrade } from './response.js';
import { joinPaths } from './upstreams.js';

export class ProxyRoute {
  readonly config: ProxyConfig;
  private readonly backends: readonly Backend[];
  private readonly hosts: readonly UpstreamHost[];
  private readonly backendOf = new Map<UpstreamHost, Backend>();
  private readonly policy: Policy;
  private readonly fromMatches: (path: string) => boolean;
  private readonly exceptMatches: ((path: string) => boolean)[];
  private readonly health: HealthChecker | undefined;
  private readonly httpAttempt: AttemptOptions;
  private readonly upgradeAttempt: AttemptOptions;

  constructor(config: ProxyConfig) {
    this.config = config;
    const pool = { keepalive: config.keepalive, tls: config.tls, fallbackDelayMs: config.fallbackDelayMs };
    this.backends = config.targets.map((t) => new Backend(t, config.limits, pool));
    this.hosts = this.backends.map((b) => b.host);
    for (const b of this.backends) this.backendOf.set(b.host, b);
    this.policy = createPolicy(config.policy.name, config.policy.arg);
    this.fromMatches = compilePathMatcher(config.from);
    this.exceptMatches = config.except.map((p) => compilePathMatcher(p));
    this.health = config.healthCheck ? new HealthChecker(this.backends, config.healthCheck) : undefined;
    const base = { dialTimeoutMs: config.dialTimeoutMs, responseTimeoutMs: config.responseTimeoutMs };
    this.httpAttempt = { ...base, upgrade: false };
    this.upgradeAttempt = { ...base, upgrade: true };
  }

  /** Does this proxy take the path (its `from` matches and no `except` excludes it)? */
  matches(path: string): boolean {
    if (!this.fromMatches(path)) return false;
    for (const m of this.exceptMatches) if (m(path)) return false;
    return true;
  }

  start(): void {
    for (const h of this.hosts) h.putInService();
    this.health?.start();
  }

  close(): void {
    this.health?.stop();
    for (const b of this.backends) b.close();
    for (const h of this.hosts) h.takeOutOfService();
  }

  async handle(ctx: RequestContext, fullRawPath: string): Promise<void> {
    const cfg = this.config;
    const upgrade = ctx.upgrade;
    const retriesElsewhere = cfg.tryDurationMs > 0 && this.backends.length > 1;
    let body: BodySource;
    if (upgrade || !hasRequestBody(ctx)) body = { kind: 'none' };
    else if (retriesElsewhere) {
      try {
        body = { kind: 'buffered', data: await readAll(requestBody(ctx)) };
      } catch (err) {
        if (err instanceof HttpError || !ctx.res.destroyed) throw err;
        return this.clientGone(ctx);
      }
    } else body = { kind: 'stream', stream: requestBody(ctx), consumed: false };

    let reqPath = fullRawPath;
    if (cfg.without && reqPath.startsWith(cfg.without)) reqPath = reqPath.slice(cfg.without.length);
    const input = selectionInput(ctx);
    const started = performance.now();
    let lastErr: Error | undefined;

    for (;;) {
      const host = selectHost(this.policy, this.hosts, input);
      if (host) {
        const backend = this.backendOf.get(host)!;
        ctx.vars.set('upstream', host.name);
        const headers = this.outgoingHeaders(ctx, backend, body);
        const wantsUpgrade =
          upgrade !== undefined &&
          String(headers.upgrade ?? '').toLowerCase() === 'websocket' &&
          connectionTokens(headers.connection).includes('upgrade');
        const path = this.outgoingPath(backend, reqPath, ctx.query);
        const opts = wantsUpgrade ? this.upgradeAttempt : this.httpAttempt;
        const release = host.acquire();
        let result: AttemptResult;
        try {
          result = await attempt(ctx, backend, path, headers, body, opts);
          // A pooled connection the upstream had just closed: once more, on a fresh one, if the request may
          // run twice (a body-less POST may not); not the host's failure either way.
          if (result.kind === 'error' && result.staleSocket && replayable(ctx.req.method ?? 'GET', headers))
            result = await attempt(ctx, backend, path, headers, body, opts, true);
        } catch (err) {
          release();
          throw err;
        }
        if (result.kind !== 'error') {
          if (result.kind !== 'client-gone')
            host.recordResponse(result.kind === 'upgrade' ? 101 : result.res.statusCode);
          try {
            await this.deliver(ctx, result, backend);
          } finally {
            release();
          }
          return;
        }
        release();
        const err = result.err;
        // The body could not be read (over the `limits` size): the client's fault, not the upstream's.
        if (err instanceof HttpError) throw err;
        if (ctx.res.destroyed) return this.clientGone(ctx);
        // A stale pooled connection (not retried: the request may not run twice) is not the host's fault.
        if (!result.staleSocket) host.recordFailure();
        lastErr = err;
        if (result.timedOut)
          throw new HttpError(504, `proxy: upstream ${host.name}: ${err.message}`, { cause: err });
      }
      const canRetry = body.kind !== 'stream' && performance.now() - started < cfg.tryDurationMs;
      if (!canRetry) {
        const why = host ? `upstream ${host.name}: ${lastErr?.message}` : 'no hosts available upstream';
        throw new HttpError(502, `proxy: ${why}`, { cause: lastErr });
      }
      await delay(cfg.tryIntervalMs);
      if (ctx.res.destroyed) return this.clientGone(ctx);
    }
  }

  private async deliver(
    ctx: RequestContext,
    result: Exclude<AttemptResult, { kind: 'error' }>,
    backend: Backend,
  ): Promise<void> {
    switch (result.kind) {
      case 'client-gone':
        this.clientGone(ctx);
        return;
      case 'upgrade': {
        const upgrade = ctx.upgrade!;
        ctx.res.statusCode = 101;
        await spliceUpgrade(upgrade, result.head, result.conn, result.rest);
        return;
      }
      case 'response':
        try {
          copyResponseHead(ctx, result.res, this.config.downstreamRules);
        } catch (err) {
          // A header_downstream rule rendered a value Node refuses: nothing was sent; let go of the upstream.
          result.res.abort();
          throw err;
        }
        await result.res.pipeTo(ctx.res, backend.target.name);
        return;
    }
  }

  /** Caddy's 499: the client closed the connection before the answer; nothing can be sent. */
  private clientGone(ctx: RequestContext): void {
    if (!ctx.res.headersSent) ctx.res.statusCode = 499;
  }

  /** The request path joined to the upstream's path prefix, and the queries merged (`upstream&request`). */
  private outgoingPath(backend: Backend, reqPath: string, query: string): string {
    const t = backend.target;
    let path = t.basePath ? joinPaths(t.basePath, reqPath) : reqPath;
    if (!path.startsWith('/')) path = `/${path}`;
    const q = t.baseQuery && query ? `${t.baseQuery}&${query}` : t.baseQuery || query;
    return q ? `${path}?${q}` : path;
  }

  /**
   * Request headers for one upstream: hop-by-hop removed, X-Forwarded-* added, Host = the upstream's own
   * (Caddy), Basic auth from the upstream URL if the client sent none, then the header_upstream rules.
   */
  private outgoingHeaders(ctx: RequestContext, backend: Backend, body: BodySource): OutgoingHttpHeaders {
    const req = ctx.req;
    const h = withoutHopByHop(req.headers);
    // Node already answered `Expect: 100-continue` to the client; the upstream must not wait for the body.
    delete h.expect;
    setForwardedHeaders(h, req.headers, { ip: clientIp(req.socket.remoteAddress), tls: ctx.isTls });
    h.host = backend.target.hostHeader;
    if (backend.target.authorization && h.authorization === undefined)
      h.authorization = backend.target.authorization;
    if (body.kind === 'buffered') {
      h['content-length'] = String(body.data.length);
    }
    const rules = this.config.upstreamRules;
    if (rules.length > 0) {
      applyHeaderRules(rules, ctx, objectHeaderBag(h), { skipEmpty: true });
      // A Host rule sets the outgoing Host; with several values the last one wins (Caddy).
      const host = h.host;
      if (Array.isArray(host)) h.host = (host as string[])[host.length - 1];
    }
    return h;
  }
}
