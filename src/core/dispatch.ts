// Runs a site's chain for one request, and turns whatever escapes it into a response.
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { boundUnreadBody } from './unread-body.js';
import { RequestContext } from './context.js';
import { HttpError, writeDefaultError } from './errors.js';
import type { Logger } from './logger.js';
import type { HttpResponse } from './response.js';
import { observeRequest } from './metrics/http.js';
import type { Site } from './site.js';
import type { UpgradeRequest } from './upgrade.js';

export async function dispatch(
  site: Site,
  req: IncomingMessage,
  res: HttpResponse,
  log: Logger,
  upgrade?: UpgradeRequest,
): Promise<void> {
  const start = performance.now();
  if (!upgrade) boundUnreadBody(req, res);
  let ctx: RequestContext;
  try {
    ctx = new RequestContext(req, res, site, start);
    ctx.log = log;
    ctx.upgrade = upgrade;
  } catch (err) {
    // A request line we cannot decode never reaches the chain.
    writeDefaultError(res, err instanceof HttpError ? err.status : 400);
    return;
  }
  observeRequest(ctx);
  try {
    await site.handler(ctx);
  } catch (err) {
    if (upgrade?.claimed) {
      // The socket belongs to the directive now; it has answered (or cut) the connection itself.
      if (!(err instanceof HttpError)) log.error({ err, site: site.label, uri: req.url }, 'upgrade failed');
      return;
    }
    if (err instanceof HttpError) {
      // A gateway failure (proxy, fastcgi: 502, 504) says which upstream failed; nobody else logs it.
      if (err.status >= 500 && !err.logged) {
        log.error({ err: err.cause ?? err, site: site.label, method: req.method, uri: req.url }, err.message);
      }
      writeDefaultError(res, err.status, err.headers, err.detail);
      return;
    }
    log.error({ err, site: site.label, method: req.method, uri: req.url }, 'request failed');
    writeDefaultError(res, 500);
  }
}
