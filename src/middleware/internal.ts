// internal <path>: paths that clients cannot request (404), reachable only through an inner handler's
// `X-Accel-Redirect: <path>` response header (e.g. a proxied app that checked permissions and lets the
// server send the file). Such a response is discarded and the request served again with that path, up to
// 10 hops; after that, 500. As in Caddy, a `rewrite` onto an internal path is still refused: the check
// runs on the current (rewritten) path.
import type { ServerResponse } from 'node:http';
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';
import { HttpError } from '../core/errors.js';
import { compilePathMatcher } from '../core/pathmatch.js';
import { beforeWriteHead } from '../core/response-hooks.js';
import { escapeDecodedPath } from '../core/rootfile.js';

const MAX_HOPS = 10;
const REDIRECT_HEADER = 'x-accel-redirect';

export const internal = defineDirective<string[]>({
  name: 'internal',
  setup(d) {
    const paths: string[] = [];
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 1) throw d.err('expected: internal <path>');
      // Caddy accepts a bare `internal` (it protects nothing); so do we.
      if (args.length === 1) paths.push(args[0]);
    }
    return paths;
  },
  build(paths) {
    const matchers = paths.map(compilePathMatcher);
    const middleware: Middleware = (next) => async (ctx) => {
      for (const m of matchers) if (m(ctx.path)) throw new HttpError(404);
      const gate = new RedirectGate(ctx.res);
      for (let hop = 0; ; hop++) {
        const redirected = await gate.run(() => next(ctx));
        if (redirected === undefined) return;
        if (hop === MAX_HOPS) {
          gate.release();
          throw new HttpError(500, 'too many X-Accel-Redirect hops');
        }
        ctx.setUri(escapeDecodedPath(redirected) + (ctx.query ? `?${ctx.query}` : ''));
      }
    };
    return { middleware };
  },
});

/**
 * Holds back a response that carries X-Accel-Redirect: its head, body and end are swallowed, so the
 * request can be served again on the same (still unsent) response.
 */
class RedirectGate {
  private readonly res: ServerResponse;
  private swallowing = false;
  private ended: (() => void) | undefined;

  constructor(res: ServerResponse) {
    this.res = res;
    // Make sure the hook wrapper of other directives (gzip, log, header) sits beneath ours: their hooks then
    // run only for the response that really goes out.
    beforeWriteHead(res, () => undefined);
    /* eslint-disable @typescript-eslint/unbound-method -- re-applied with Reflect.apply on the same response */
    const writeHead = res.writeHead;
    const write = res.write;
    const end = res.end;
    /* eslint-enable @typescript-eslint/unbound-method */
    res.writeHead = (...args: unknown[]) => {
      if (!res.headersSent) {
        // Headers given to writeHead become ordinary headers first, so a redirect among them is seen.
        const headers = typeof args[1] === 'string' ? args[2] : args[1];
        if (headers && typeof headers === 'object') moveIntoSetHeader(res, headers);
        if (typeof args[0] === 'number') res.statusCode = args[0];
        if (typeof args[1] === 'string') res.statusMessage = args[1];
      }
      if (this.holds()) return res;
      return Reflect.apply(writeHead, res, [res.statusCode]);
    };
    res.write = ((...args: unknown[]) => {
      if (this.holds()) {
        callbackOf(args)?.();
        return true;
      }
      return Reflect.apply(write, res, args) as boolean;
    }) as ServerResponse['write'];
    res.end = ((...args: unknown[]) => {
      if (this.holds()) {
        callbackOf(args)?.();
        this.ended?.();
        return res;
      }
      return Reflect.apply(end, res, args) as ServerResponse;
    }) as ServerResponse['end'];
  }

  /** Is the response being held (or does it just now ask to be, through its headers)? */
  private holds(): boolean {
    if (this.swallowing) return true;
    if (this.res.headersSent) return false;
    return (this.swallowing = Boolean(this.res.getHeader(REDIRECT_HEADER)));
  }

  /**
   * Runs the handler. Resolves with the redirect target when the response asked for one (once the handler
   * ended it, or finished or failed without writing), else undefined.
   */
  async run(handler: () => Promise<void>): Promise<string | undefined> {
    this.swallowing = false;
    const ended = new Promise<void>((resolve) => (this.ended = resolve));
    const done = handler().then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
    // A handler that pipes a body may only settle when the (swallowed) response "finishes": don't wait for it.
    const err = await Promise.race([done, ended]);
    const target = this.res.headersSent ? undefined : headerText(this.res.getHeader(REDIRECT_HEADER));
    if (!target) {
      if (err !== undefined) throw err;
      return undefined;
    }
    this.res.removeHeader(REDIRECT_HEADER);
    this.res.removeHeader('content-length');
    this.res.removeHeader('content-encoding');
    this.res.statusCode = 200;
    this.swallowing = false;
    return target;
  }

  /** Lets the response through again (for the error page after too many hops). */
  release(): void {
    this.swallowing = false;
    this.res.removeHeader(REDIRECT_HEADER);
  }
}

function moveIntoSetHeader(res: ServerResponse, headers: object): void {
  if (Array.isArray(headers)) {
    const flat = (Array.isArray(headers[0]) ? headers.flat() : headers) as string[];
    for (let i = 0; i + 1 < flat.length; i += 2) res.appendHeader(flat[i], flat[i + 1]);
    return;
  }
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | number | undefined>))
    if (v !== undefined) res.setHeader(k, v);
}

function callbackOf(args: unknown[]): (() => void) | undefined {
  const last = args[args.length - 1];
  return typeof last === 'function' ? (last as () => void) : undefined;
}

function headerText(v: string | number | string[] | undefined): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? (v[0] ?? '') : String(v);
}
