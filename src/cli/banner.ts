// The startup listing: one line per listener, then one per site, with the port actually bound.
import { isIP } from 'node:net';
import type { Config } from '../app.js';

export function startupLines(config: Config, boundPorts: ReadonlyMap<string, number>): string[] {
  const lines: string[] = [];
  for (const spec of config.listeners.values()) {
    const port = boundPorts.get(spec.key) ?? spec.port;
    lines.push(`Serving HTTP on ${spec.host ? `${spec.host}:` : 'port '}${port}`);
    for (const site of spec.sites) {
      const a = site.config.address;
      const host = a.host.includes(':') ? `[${a.host}]` : a.host;
      const local = isLoopback(spec.host) && !isLoopback(a.host) ? ' (only accessible on this machine)' : '';
      lines.push(`${a.scheme || 'http'}://${host}:${port}${a.path}${local}`);
    }
    lines.push('');
  }
  return lines.slice(0, -1);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
