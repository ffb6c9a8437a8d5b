// bind <host>: the interface this site's port listens on (sites are grouped per bound host:port).
import { isIP } from 'node:net';
import { defineDirective } from '../core/directive.js';

export const bind = defineDirective<string>({
  name: 'bind',
  setup(d, ctx) {
    let host = '';
    while (d.next()) {
      if (!d.nextArg()) throw d.argErr();
      host = d.val();
      if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
      if (!host || (host.includes(':') && isIP(host) !== 6)) throw d.err(`Invalid bind address '${d.val()}'`);
      d.remainingArgs(); // Caddy ignores extra arguments.
    }
    ctx.site.bindHost = host;
    return host;
  },
});
