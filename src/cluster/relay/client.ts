// STAND-IN for the cluster-relay branch's HTTP/2 relay client (same interface): HTTP/1.1 keep-alive over TCP,
// authenticated by a key derived from the cluster secret. The lead merges the real files over this one.
import http from 'node:http';
import type { Logger } from '../../core/logger.js';
import { PeerUpstream } from '../../middleware/tunnel/peer.js';
import type { Upstream } from '../../middleware/tunnel/relay.js';
import { EVICT_PATH, H_RELAY_AUTH, H_RELAY_SITE, H_RELAY_TOKEN, relayKey } from './server.js';

export class RelayClient {
  private readonly key: string;

  constructor(options: { secret: string; log: Logger }) {
    this.key = relayKey(options.secret);
  }

  upstream(address: string, siteKey: string, host: string, responseTimeoutMs: number): Upstream {
    const { hostname, port } = split(address);
    const headers = { [H_RELAY_AUTH]: this.key, [H_RELAY_SITE]: encodeURIComponent(siteKey) };
    return new PeerUpstream({ host: hostname, port, headers }, host, responseTimeoutMs);
  }

  evict(address: string, siteKey: string, host: string, token: string): Promise<boolean> {
    const { hostname, port } = split(address);
    return new Promise((resolve) => {
      const req = http.request(
        {
          host: hostname,
          port,
          path: EVICT_PATH,
          method: 'DELETE',
          headers: {
            host,
            [H_RELAY_AUTH]: this.key,
            [H_RELAY_SITE]: encodeURIComponent(siteKey),
            [H_RELAY_TOKEN]: token,
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode === 204);
        },
      );
      req.setTimeout(2_000, () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function split(address: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return { hostname: m?.[1] ?? address, port: Number(m?.[2] ?? 0) };
}
