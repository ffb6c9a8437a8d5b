// A visitor's request on a tunnel stream and the wait for its answer, the same whether the stream is on a
// session held by this process or on the link to the process that holds it.
import type { Readable } from 'node:stream';
import { countRead } from '../../core/read-gc.js';
import { requestWire, responseOf } from '../../tunnel/headers.js';
import { MuxStream } from '../../tunnel/mux-stream.js';
import type { Mux } from '../../tunnel/mux.js';
import { H_DETAIL, H_ERROR } from '../../tunnel/protocol.js';
import { StreamDuplex } from '../../tunnel/stream-duplex.js';
import { ignoreError } from '../../tunnel/transport.js';
import { TunnelError, visitorGone, type Exchange, type Forwarded, type Visitor } from './relay.js';

export interface Sent {
  stream: MuxStream;
  /** The stream as a duplex when a body goes out (a request body, or an upgrade's bytes later). */
  duplex: StreamDuplex | undefined;
}

/** Opens a stream and sends the request; its body (if any) is piped in with backpressure. */
export function sendRequest(mux: Mux, fwd: Forwarded, body: Readable | null): Sent {
  const stream = new MuxStream(mux);
  const bodyless = body === null && !fwd.protocol;
  stream.open(requestWire(fwd), bodyless);
  if (bodyless) return { stream, duplex: undefined };
  const duplex = new StreamDuplex(stream);
  duplex.on('error', ignoreError);
  if (body) {
    body.on('error', (err) => duplex.destroy(err));
    body.on('data', (chunk: Buffer) => countRead(chunk.length));
    body.pipe(duplex);
  }
  return { stream, duplex };
}

/**
 * Waits for the response head (at most `timeoutMs`); a reset or a lost link before it is a TunnelError, and
 * so is an error the client reports (H_ERROR). A visitor who goes away meanwhile cancels the stream, and with
 * it the request at the target. A whole small body comes as a Buffer, anything else as the stream's duplex.
 */
export function awaitReply(
  sent: Sent,
  visitor: Visitor,
  host: string,
  timeoutMs: number,
  abandon?: () => void,
): Promise<Exchange> {
  const { stream, duplex } = sent;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      visitor.off('close', onGone);
      duplex?.off('close', onClosed);
    };
    const fail = (err: TunnelError) => {
      if (settled) return;
      settle();
      abandon?.();
      if (duplex) duplex.destroy();
      else stream.reset('cancel');
      reject(err);
    };
    const onGone = () => fail(visitorGone(host));
    const onClosed = () =>
      fail(new TunnelError(502, 'no-tunnel', `the tunnel for ${host} closed before an answer came`));
    visitor.once('close', onGone);
    // Gone already (while the request was being prepared): its 'close' will not come again.
    if (visitor.destroyed) queueMicrotask(onGone);
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => fail(new TunnelError(504, 'timeout', `the tunnel client for ${host} did not answer in time`)),
        timeoutMs,
      );
    }
    if (duplex) duplex.once('close', onClosed);
    else
      stream.sink = {
        deliver: (c) => stream.consumed(c.length),
        abandoned: onClosed,
        resumeWriting: ignoreError,
      };
    stream.onReply = (wire, body, end) => {
      if (settled) {
        stream.consumed(body.length);
        return;
      }
      let status: number;
      let headers;
      try {
        ({ status, headers } = responseOf(wire));
      } catch {
        stream.consumed(body.length);
        fail(new TunnelError(502, 'no-tunnel', `the tunnel client for ${host} sent a broken response head`));
        return;
      }
      settle();
      const code = headers[H_ERROR];
      if (typeof code === 'string') {
        stream.consumed(body.length);
        if (duplex) duplex.destroy();
        else if (!stream.done) stream.reset('cancel');
        const auth = headers['www-authenticate'];
        const detail = String(headers[H_DETAIL] ?? 'the tunnel client failed');
        reject(
          new TunnelError(status, code, detail, typeof auth === 'string' ? { 'www-authenticate': auth } : {}),
        );
        return;
      }
      if (!duplex && end) {
        stream.consumed(body.length);
        resolve({ status, headers, body });
        return;
      }
      const d = duplex ?? new StreamDuplex(stream);
      if (!duplex) d.on('error', ignoreError);
      d.deliver(body, end);
      resolve({ status, headers, body: d });
    };
  });
}
