// The middleware chain: a site's directives compose into one Handler, once per config load.
import type { RequestContext } from './context.js';

/** Handles one request. Resolves when the response has been produced (or handed off, e.g. piped). */
export type Handler = (ctx: RequestContext) => Promise<void>;

/** Wraps the next handler. Built once per config load, never per request. */
export type Middleware = (next: Handler) => Handler;

/** Composes middlewares, outermost first, around the innermost handler. */
export function compose(middlewares: readonly Middleware[], innermost: Handler): Handler {
  let handler = innermost;
  for (let i = middlewares.length - 1; i >= 0; i--) handler = middlewares[i](handler);
  return handler;
}
