// One GET on a connection of its own, for health checks: the same dialing (TCP, TLS, unix socket), request
// serialization and strict parser as proxied requests, never a pooled connection (a check must see the
// upstream as a new client would, and must not take a connection from the requests).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { ResponseParser, type ResponseHead } from '../../../core/h1/parser.js';
import {
  ConnectionPool,
  type ConnectionUser,
  type DialOptions,
  type UpstreamConnection,
} from '../../../core/h1/pool.js';
import { serializeHead } from '../../../core/h1/request.js';

export interface ProbeResult {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as text, up to the limit asked for (the rest is read and dropped). */
  readonly body: string;
}

/** A pool that keeps nothing: every probe dials anew. */
export function probePool(dial: DialOptions): ConnectionPool {
  return new ConnectionPool(dial, 0);
}

/**
 * GETs `path` and resolves with the answer, or rejects on a transport or protocol error, or when the whole
 * exchange (dial included) takes longer than `timeoutMs`. `cancel` drops it at once (the checker stops).
 */
export function probe(
  pool: ConnectionPool,
  path: string,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  maxBody: number,
): { result: Promise<ProbeResult>; cancel: () => void } {
  let cancel = () => {};
  const result = new Promise<ProbeResult>((resolve, reject) => {
    let head: ResponseHead | undefined;
    let body = '';
    let settled = false;
    let conn: UpstreamConnection | undefined;
    const finish = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (conn) pool.release(conn, false);
      if (err) reject(err);
      else resolve({ statusCode: head!.statusCode, headers: head!.headers, body });
    };
    const parser = new ResponseParser(false, {
      onHead: (h) => (head = h),
      onBody: (chunk) => {
        if (body.length < maxBody)
          body += chunk.toString('utf8', 0, Math.min(chunk.length, maxBody - body.length));
      },
      onComplete: () => finish(undefined),
    });
    const user: ConnectionUser = {
      onData: (chunk) => {
        try {
          parser.execute(chunk);
        } catch (err) {
          finish(err as Error);
        }
      },
      onEnd: () => {
        try {
          parser.finish();
        } catch (err) {
          finish(err as Error);
        }
      },
      onError: (err) => finish(err),
      onClose: () => finish(new Error('connection closed before the answer was complete')),
      onDrain: () => {},
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
    cancel = () => finish(new Error('cancelled'));
    try {
      const text = serializeHead('GET', path, headers, false, false).text;
      conn = pool.connect(timeoutMs, user);
      conn.socket.write(text, 'latin1');
    } catch (err) {
      finish(err as Error);
    }
  });
  return { result, cancel };
}
