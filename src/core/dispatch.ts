// Runs a site's chain for one request, and turns whatever escapes it into a response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { RequestContext } from './context.js';
import { HttpError, writeDefaultError } from './errors.js';
import type { Logger } from './logger.js';
import type { Site } from './site.js';

export async function dispatch(
  site: Site,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
): Promise<void> {
  const start = performance.now();
  let ctx: RequestContext;
  try {
    ctx = new RequestContext(req, res, site, start);
    ctx.log = log;
  } catch (err) {
    // A request line we cannot decode never reaches the chain.
    writeDefaultError(res, err instanceof HttpError ? err.status : 400);
    return;
  }
  try {
    await site.handler(ctx);
  } catch (err) {
    if (err instanceof HttpError) {
      // A gateway failure (proxy, fastcgi: 502, 504) says which upstream failed; nobody else logs it.
      if (err.status >= 500) {
        log.error({ err: err.cause ?? err, site: site.label, method: req.method, uri: req.url }, err.message);
      }
      writeDefaultError(res, err.status, err.headers);
      return;
    }
    log.error({ err, site: site.label, method: req.method, uri: req.url }, 'request failed');
    writeDefaultError(res, 500);
  }
}
