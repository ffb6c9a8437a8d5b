// tunnel: serves the site's hosts through tunnel clients (`nodecaddy tunnel`) connected over WebSocket.
// `*.tunnel.example.com { tunnel { secret … } }`: a client named alice claims alice.tunnel.example.com and
// receives its requests as streams over one WebSocket. See src/tunnel/protocol.ts for the wire.
import { defineDirective } from '../../core/directive.js';
import { HttpError } from '../../core/errors.js';
import { hasRequestBody, requestBody } from '../../core/body.js';
import type { RequestContext } from '../../core/context.js';
import { clientIp, setForwardedHeaders, withoutHopByHop } from '../../core/forwarded.js';
import { hostOnly } from '../../core/vhost.js';
import { TUNNEL_PATH, H_VERSION } from '../../tunnel/protocol.js';
import { acceptTunnel } from './handshake.js';
import { parseTunnel, secretsKey, type TunnelSettings } from './options.js';
import { acquireSite, releaseSite, type SiteTunnels } from './registry.js';
import { relay, TunnelError, type Forwarded } from './relay.js';

export const tunnel = defineDirective<TunnelSettings>({
  name: 'tunnel',
  setup(d, ctx) {
    const settings = parseTunnel(d, ctx);
    // Over HTTPS, a name an authenticated client holds may get its certificate on demand: the claim is the
    // permission (tls.md §6.2).
    ctx.site.onDemandByClaim = true;
    return settings;
  },
  build(settings, config) {
    const a = config.address;
    // Keyed by host pattern, path and secrets, not port: `alice` is the same tunnel on every address of one
    // site block (http and, later, https) and for every server process sharing the runtime dir, while two
    // sites with other secrets (the same wildcard on two ports) are separate: a secret opens its own site only.
    const key = `${a.host}${a.path}#${secretsKey(settings.secrets)}`;
    const prefix = a.path && a.path !== '/' ? a.path : '';
    let site: SiteTunnels | undefined;
    return {
      start() {
        site = acquireSite(key, settings, config.bindHost);
        return Promise.resolve();
      },
      async close() {
        if (site) await releaseSite(site, settings);
        site = undefined;
      },
      middleware: () => async (ctx) => {
        if (!site) throw new HttpError(503);
        if (ctx.upgrade && ctx.path === TUNNEL_PATH && ctx.req.headers[H_VERSION] !== undefined) {
          return acceptTunnel(ctx, site, settings);
        }
        const fwd = forwarded(ctx, prefix);
        const body = !ctx.upgrade && hasRequestBody(ctx) ? requestBody(ctx) : null;
        try {
          await relay(ctx.res, ctx.upgrade, fwd, body, site.upstream(hostOnly(fwd.authority)));
        } catch (err) {
          if (err instanceof HttpError) throw err;
          if (err instanceof TunnelError) {
            logRefusal(settings, ctx, err);
            throw new HttpError(err.status, err.message, {
              detail: err.message,
              headers: err.headers,
              logged: true,
            });
          }
          throw err;
        }
      },
    };
  },
});

/**
 * One line, no stack: a name without a client (every /favicon.ico of a closed laptop) is news, not a fault;
 * a client or target failing is worth a warning; a visitor who left is the access log's business.
 */
function logRefusal(settings: TunnelSettings, ctx: RequestContext, err: TunnelError): void {
  // A registry outage is logged once where it is noticed (the Redis link), not once per visitor.
  if (err.code === 'visitor-gone' || err.code === 'registry-unavailable' || err.status < 500) return;
  const fields = { host: ctx.req.headers.host, method: ctx.req.method, uri: ctx.originalUri, code: err.code };
  if (err.code === 'no-tunnel') settings.log.info(fields, err.message);
  else settings.log.warn(fields, err.message);
}

/** The request as it goes through the tunnel: hop-by-hop headers out, X-Forwarded-For appended. */
function forwarded(ctx: RequestContext, prefix: string): Forwarded {
  const req = ctx.req;
  const headers = withoutHopByHop(req.headers);
  setForwardedHeaders(headers, req.headers, { ip: clientIp(req.socket.remoteAddress), tls: ctx.isTls });
  return {
    method: req.method ?? 'GET',
    path: prefix + ctx.uri,
    authority: req.headers.host ?? '',
    headers,
    protocol: ctx.upgrade?.protocol,
  };
}
