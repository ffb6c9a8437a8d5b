// internal <path>: paths that clients cannot request (404), reachable only through an inner handler's
// `X-Accel-Redirect: <path>` response header (e.g. a proxied app that checked permissions and lets the
// server send the file). Such a response is discarded and the request served again with that path, up to
// 10 hops; after that, 500. As in Caddy, a `rewrite` onto an internal path is still refused: the check
// runs on the current (rewritten) path.
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';
import { HttpError } from '../core/errors.js';
import { compilePathMatcher } from '../core/pathmatch.js';
import {
  addResponseFilter,
  HOLD,
  releaseHeld,
  type BodyOut,
  type HttpResponse,
  type ResponseFilter,
  type WriteDone,
} from '../core/response.js';
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
 * Holds back a response that carries X-Accel-Redirect (a response filter that answers HOLD at the header
 * moment): its head, body and end are swallowed, so the request can be served again on the same (still
 * unsent) response. The filters of outer directives (gzip, log, header) sit beneath it and see only the
 * response that really goes out.
 */
class RedirectGate implements ResponseFilter {
  private readonly res: HttpResponse;
  private holding = false;
  private ended: (() => void) | undefined;

  constructor(res: HttpResponse) {
    this.res = res;
    addResponseFilter(res, this);
  }

  head(res: HttpResponse): typeof HOLD | undefined {
    if (!res.getHeader(REDIRECT_HEADER)) return undefined;
    this.holding = true;
    return HOLD;
  }

  write(chunk: Buffer, done: WriteDone | undefined, out: BodyOut): boolean {
    if (!this.holding) return out.write(chunk, done);
    done?.();
    return true;
  }

  end(chunk: Buffer | undefined, out: BodyOut): void {
    if (this.holding) this.ended?.();
    else out.end(chunk);
  }

  flush(out: BodyOut): void {
    if (!this.holding) out.flush();
  }

  /**
   * Runs the handler. Resolves with the redirect target when the response asked for one (once the handler
   * ended it, or finished or failed without writing), else undefined.
   */
  async run(handler: () => Promise<void>): Promise<string | undefined> {
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
    this.releaseAttempt();
    return target;
  }

  /** Lets the response through again (for the error page after too many hops). */
  release(): void {
    this.res.removeHeader(REDIRECT_HEADER);
    this.releaseAttempt();
  }

  private releaseAttempt(): void {
    this.holding = false;
    releaseHeld(this.res, this);
  }
}

function headerText(v: string | number | string[] | undefined): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? (v[0] ?? '') : String(v);
}
