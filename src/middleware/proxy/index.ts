// proxy <from> <to>... { ... }: Caddy v1's load-balancing reverse proxy (reference 4.18). Several lines per
// site; a request goes to the one with the longest matching `from` that does not `except` it.
import { defineDirective } from '../../core/directive.js';
import { parseProxy, type ProxyConfig } from './config.js';
import { ProxyRoute } from './route.js';

export const proxy = defineDirective<ProxyConfig[]>({
  name: 'proxy',
  setup(d, ctx) {
    const configs: ProxyConfig[] = [];
    while (d.next()) configs.push(parseProxy(d, ctx.cwd));
    return configs;
  },
  build(configs, site) {
    // Longest `from` first; among equals the first written wins (a stable sort keeps file order).
    const routes = configs
      .map((c) => new ProxyRoute(c))
      .sort((a, b) => b.config.from.length - a.config.from.length);
    const prefix = site.address.path && site.address.path !== '/' ? site.address.path : '';
    return {
      middleware: (next) => (ctx) => {
        // Caddy matches and forwards the whole request path, site prefix included.
        const path = prefix ? prefix + ctx.path : ctx.path;
        for (const route of routes) {
          if (route.matches(path)) return route.handle(ctx, prefix ? prefix + ctx.rawPath : ctx.rawPath);
        }
        return next(ctx);
      },
      start: () => {
        for (const r of routes) r.start();
        return Promise.resolve();
      },
      close: () => {
        for (const r of routes) r.close();
        return Promise.resolve();
      },
    };
  },
});
