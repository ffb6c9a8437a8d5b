// STAND-IN for the cluster-relay branch's HTTP/2 relay client (same interface): HTTP/1.1 keep-alive over TCP,
// authenticated by a key derived from the cluster secret. The lead merges the real files over this one.
import http from 'node:http';
import type { Readable } from 'node:stream';
import { withoutHopByHop } from '../../core/forwarded.js';
import type { Logger } from '../../core/logger.js';
import {
  TunnelError,
  visitorGone,
  type Exchange,
  type Forwarded,
  type Upgraded,
  type Upstream,
  type Visitor,
} from '../../middleware/tunnel/relay.js';
import { H_DETAIL, H_ERROR } from '../../tunnel/protocol.js';
import { EVICT_PATH, H_RELAY_AUTH, H_RELAY_SITE, H_RELAY_TOKEN, relayKey } from './server.js';

const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 });

export class RelayClient {
  private readonly key: string;

  constructor(options: { secret: string; log: Logger }) {
    this.key = relayKey(options.secret);
  }

  upstream(address: string, siteKey: string, host: string, responseTimeoutMs: number): Upstream {
    const headers = { [H_RELAY_AUTH]: this.key, [H_RELAY_SITE]: encodeURIComponent(siteKey) };
    return new RelayUpstream(split(address), headers, host, responseTimeoutMs);
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

/** A tunnel held by another instance, over HTTP/1.1 (the errors come back in headers, as peer.ts does). */
class RelayUpstream implements Upstream {
  constructor(
    private readonly to: { hostname: string; port: number },
    private readonly extra: Record<string, string>,
    private readonly host: string,
    private readonly timeoutMs: number,
  ) {}

  request(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Exchange> {
    return this.send(fwd, body, visitor) as Promise<Exchange>;
  }

  upgrade(fwd: Forwarded, visitor: Visitor): Promise<Upgraded | Exchange> {
    return this.send(fwd, null, visitor);
  }

  private send(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Upgraded | Exchange> {
    const headers = { ...fwd.headers, ...this.extra, host: fwd.authority };
    if (fwd.protocol) Object.assign(headers, { connection: 'Upgrade', upgrade: fwd.protocol });
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: this.to.hostname,
        port: this.to.port,
        method: fwd.method,
        path: fwd.path,
        headers,
        agent: fwd.protocol ? false : agent,
      });
      let answered = false;
      const onGone = () => {
        if (!answered) req.destroy(visitorGone(this.host));
      };
      visitor.once('close', onGone);
      if (visitor.destroyed) queueMicrotask(onGone);
      const settle = () => {
        answered = true;
        visitor.off('close', onGone);
        req.setTimeout(0);
      };
      req.setTimeout(this.timeoutMs, () => {
        if (!answered) req.destroy(new TunnelError(504, 'timeout', `no answer for ${this.host} in time`));
      });
      req.on('error', (err: Error) => {
        if (answered) return;
        visitor.off('close', onGone);
        if (err instanceof TunnelError) reject(err);
        else
          reject(
            new TunnelError(502, 'no-tunnel', `the instance holding ${this.host} failed: ${err.message}`),
          );
      });
      req.on('upgrade', (res, socket, head) => {
        settle();
        if (head.length > 0) socket.unshift(head);
        resolve({ status: 101, headers: withoutHopByHop(res.headers), stream: socket });
      });
      req.on('response', (res) => {
        settle();
        const code = res.headers[H_ERROR];
        if (typeof code === 'string') {
          res.resume();
          reject(new TunnelError(res.statusCode ?? 502, code, String(res.headers[H_DETAIL] ?? '')));
          return;
        }
        resolve({ status: res.statusCode ?? 502, headers: withoutHopByHop(res.headers), body: res });
      });
      if (body) {
        body.on('error', (err) => req.destroy(err));
        body.pipe(req);
      } else req.end();
    });
  }
}

function split(address: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return { hostname: m?.[1] ?? address, port: Number(m?.[2] ?? 0) };
}
