// The startup listing: one line per listener, then one per site, with the port actually bound.
import { isIP } from 'node:net';
import type { Config } from '../app.js';
import { localRootFile } from '../certs/local-ca.js';

export function startupLines(config: Config, boundPorts: ReadonlyMap<string, number>): string[] {
  const lines: string[] = [];
  for (const spec of config.listeners.values()) {
    const port = boundPorts.get(spec.key);
    // A redirect listener that could not be bound (port 80 without the right) is left out.
    if (port === undefined) continue;
    lines.push(`Serving ${spec.tls ? 'HTTPS' : 'HTTP'} on ${spec.host ? `${spec.host}:` : 'port '}${port}`);
    for (const site of spec.sites) {
      const a = site.config.address;
      const host = a.host.includes(':') ? `[${a.host}]` : a.host;
      const local = isLoopback(spec.host) && !isLoopback(a.host) ? ' (only accessible on this machine)' : '';
      lines.push(`${a.scheme || 'http'}://${host}:${port}${a.path}${local}`);
    }
    lines.push('');
  }
  if (config.sites.some((s) => s.config.certSource?.kind === 'internal'))
    lines.push(
      `Local CA root certificate (trust it to avoid warnings): ${localRootFile(config.dataDir)}`,
      '',
    );
  return lines.slice(0, -1);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
