// The relaying side: an Upstream for a tunnel held by another instance. Each visitor request is one HTTP/2
// stream on a pooled, authenticated session to the holder (pool.ts); an Upgrade is an RFC 8441 extended
// CONNECT whose stream, once the holder answers 200, is the upgraded byte stream. Bodies stream both ways with
// backpressure (HTTP/2 flow control), the holder's errors come back as the same TunnelError, and a visitor who
// leaves resets the stream, which the holder sees as its own visitor leaving.
import http2, { type ClientHttp2Stream } from 'node:http2';
import type { Duplex, Readable } from 'node:stream';
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
import { ignoreError } from '../../tunnel/transport.js';
import { isPrivateAddress } from '../settings.js';
import { proofMatches, relayKey } from './auth.js';
import { countFailure, countRelayed } from './metrics.js';
import { SessionPool, splitAddress, type RelaySession } from './pool.js';
import {
  answerFields,
  errorOf,
  H_EVICT_TOKEN,
  H_OP,
  H_PORT,
  H_PROOF,
  H_REMOTE,
  H_SITE,
  H_UPGRADED,
  requestHead,
  TCP_PROTOCOL,
} from './wire.js';

export interface RelayClientOptions {
  secret: string;
  log: Logger;
  /** Bound on reaching a peer (TCP, TLS, the proofs); default 2 s. */
  connectTimeoutMs?: number;
  /** HTTP/2 sessions per peer address; default 2. */
  sessionsPerPeer?: number;
  /** Whether to dial `address` over TLS; default: unless it is loopback or private (as its listener decides). */
  tls?: (address: string) => boolean;
}

/** How long an evict may take before it counts as refused. */
const EVICT_TIMEOUT_MS = 5000;
const EMPTY = Buffer.alloc(0);

export class RelayClient {
  private readonly pool: SessionPool;
  private readonly connectTimeoutMs: number;

  constructor(options: RelayClientOptions) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.pool = new SessionPool({
      key: relayKey(options.secret),
      log: options.log,
      tls: options.tls ?? ((address) => !isPrivateAddress(splitAddress(address).host)),
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      sessionsPerPeer: Math.max(1, options.sessionsPerPeer ?? 2),
    });
  }

  /** An Upstream that sends requests for tunnel `host` of site `siteKey` to the instance at `address` (host:port). */
  upstream(address: string, siteKey: string, host: string, responseTimeoutMs: number): Upstream {
    const target: Target = { address, siteKey, host, timeoutMs: responseTimeoutMs };
    return {
      request: (fwd, body, visitor) => this.send(target, fwd, body, visitor) as Promise<Exchange>,
      upgrade: (fwd, visitor) => this.send(target, fwd, null, visitor),
    };
  }

  /** Asks the instance at `address` to close its session of `host` if it was opened with `token` (a reconnect of the same client elsewhere). */
  async evict(address: string, siteKey: string, host: string, token: string): Promise<boolean> {
    let s: RelaySession;
    try {
      s = await this.pool.session(address);
    } catch {
      return false;
    }
    return new Promise((resolve) => {
      let stream: ClientHttp2Stream;
      try {
        stream = s.h2.request(
          {
            ':method': 'DELETE',
            ':path': '/',
            ':authority': host,
            [H_OP]: 'evict',
            [H_SITE]: encodeURIComponent(siteKey),
            [H_EVICT_TOKEN]: token,
            [H_PROOF]: s.proofs.client,
          },
          { endStream: true },
        );
      } catch {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), EVICT_TIMEOUT_MS);
      stream.on('error', ignoreError);
      stream.once('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
      stream.once('response', (head) => {
        if (!proofMatches(head[H_PROOF], s.proofs.server)) {
          this.pool.distrust(s, address);
          resolve(false);
          return;
        }
        resolve(head[':status'] === 204);
      });
    });
  }

  /**
   * A TCP connection accepted on public port `port` of tunnel `host`, relayed to the instance at `address`
   * that holds it: the stream once the holder accepted it (half-close and resets pass both ways), or a
   * TunnelError (not-here when the holder does not hold it any more).
   */
  async connectTcp(
    address: string,
    siteKey: string,
    host: string,
    port: number,
    remote: string,
  ): Promise<Duplex> {
    countRelayed('out');
    let s: RelaySession;
    try {
      s = await this.pool.session(address);
    } catch (err) {
      if (err instanceof TunnelError) countFailure('out', err.code);
      throw err;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = s.h2.request({
        ':method': 'CONNECT',
        ':protocol': TCP_PROTOCOL,
        ':scheme': s.tls ? 'https' : 'http',
        ':path': '/',
        ':authority': host,
        [H_SITE]: encodeURIComponent(siteKey),
        [H_PORT]: String(port),
        [H_REMOTE]: remote,
        [H_PROOF]: s.proofs.client,
      });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new TunnelError(502, 'peer-failed', `relay to ${address} for ${host} failed: ${why}`);
    }
    stream.on('error', ignoreError);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: TunnelError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        countFailure('out', err.code);
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new TunnelError(504, 'timeout', `the instance holding ${host} did not answer in time`)),
        this.connectTimeoutMs,
      );
      const closed = () =>
        fail(new TunnelError(502, 'peer-failed', `the relay to ${address} closed before ${host} answered`));
      stream.once('close', closed);
      stream.once('response', (head) => {
        if (!proofMatches(head[H_PROOF], s.proofs.server)) {
          this.pool.distrust(s, address);
          fail(
            new TunnelError(
              502,
              'peer-unauthenticated',
              `the instance at ${address} did not prove the cluster secret`,
            ),
          );
          return;
        }
        const err = errorOf(head);
        if (err || head[':status'] !== 200) {
          fail(
            err ?? new TunnelError(502, 'peer-failed', `the instance at ${address} refused the connection`),
          );
          return;
        }
        settled = true;
        clearTimeout(timer);
        stream.off('close', closed);
        resolve(stream);
      });
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async send(
    target: Target,
    fwd: Forwarded,
    body: Readable | null,
    visitor: Visitor,
  ): Promise<Upgraded | Exchange> {
    countRelayed('out');
    try {
      if (visitor.destroyed) throw visitorGone(target.host);
      const s = await this.pool.session(target.address);
      if (visitor.destroyed) throw visitorGone(target.host);
      return await this.exchange(s, target, fwd, body, visitor);
    } catch (err) {
      if (err instanceof TunnelError && err.code !== 'visitor-gone') countFailure('out', err.code);
      throw err;
    }
  }

  /** One stream: the request (and its body) out, the answer's head back within the response timeout. */
  private exchange(
    s: RelaySession,
    target: Target,
    fwd: Forwarded,
    body: Readable | null,
    visitor: Visitor,
  ): Promise<Upgraded | Exchange> {
    const { address, host } = target;
    let stream: ClientHttp2Stream;
    try {
      stream = s.h2.request(requestHead(fwd, target.siteKey, s.tls, s.proofs.client), {
        endStream: body === null && !fwd.protocol,
      });
    } catch (err) {
      // A session that got GOAWAY meanwhile, or a field HTTP/2 refuses.
      const why = err instanceof Error ? err.message : String(err);
      return Promise.reject(
        new TunnelError(502, 'peer-failed', `relay to ${address} for ${host} failed: ${why}`),
      );
    }
    stream.on('error', ignoreError);
    return new Promise((resolve, reject) => {
      let answered = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        answered = true;
        clearTimeout(timer);
        visitor.off('close', onGone);
      };
      const fail = (err: TunnelError) => {
        if (answered) return;
        settle();
        body?.unpipe(stream);
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      };
      const onGone = () => fail(visitorGone(host));
      visitor.once('close', onGone);
      // Gone already (while the session was being opened): its 'close' will not come again.
      if (visitor.destroyed) queueMicrotask(onGone);
      if (target.timeoutMs > 0) {
        timer = setTimeout(() => {
          fail(new TunnelError(504, 'timeout', `the instance holding ${host} did not answer in time`));
          this.pool.probe(s);
        }, target.timeoutMs);
      }
      stream.once('close', () =>
        fail(new TunnelError(502, 'peer-failed', `the relay to ${address} closed before ${host} answered`)),
      );
      stream.once('response', (head, flags) => {
        if (answered) return;
        if (!proofMatches(head[H_PROOF], s.proofs.server)) {
          fail(
            new TunnelError(
              502,
              'peer-unauthenticated',
              `the instance at ${address} did not prove the cluster secret`,
            ),
          );
          this.pool.distrust(s, address);
          return;
        }
        const err = errorOf(head);
        if (err) {
          fail(err);
          return;
        }
        settle();
        const headers = answerFields(head);
        if (fwd.protocol && head[H_UPGRADED] === '1') {
          resolve({ status: 101, headers, stream });
          return;
        }
        const ended = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        resolve({ status: head[':status'] ?? 502, headers, body: ended ? EMPTY : stream });
      });
      if (body) {
        body.on('error', (err) => stream.destroy(err));
        body.pipe(stream);
      }
    });
  }
}

interface Target {
  address: string;
  siteKey: string;
  host: string;
  timeoutMs: number;
}
