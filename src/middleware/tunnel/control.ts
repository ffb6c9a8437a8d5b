// The server's side of a session's control stream (see H_CONTROL in src/tunnel/protocol.ts): one long POST
// to the client whose body is JSON lines: `online` first, then the tunnel's traffic whenever it changed.
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { H_CONTROL, type ControlMessage, type TrafficCounters } from '../../tunnel/protocol.js';
import { ignoreError } from '../../tunnel/transport.js';

export const CONTROL_PATH = '/_nodecaddy/control';
/** How often the client hears about its traffic (when it changed). */
const TRAFFIC_EVERY_MS = 1000;

export class ControlStream {
  private readonly stream: ClientHttp2Stream | undefined;
  private readonly timer: NodeJS.Timeout;
  private last = '';

  constructor(h2: ClientHttp2Session, traffic: () => TrafficCounters & { since: Date }) {
    try {
      this.stream = h2.request({ ':method': 'POST', ':path': CONTROL_PATH, [H_CONTROL]: '1' });
      this.stream.on('error', ignoreError);
      // The client answers with an empty 200 it never ends; nothing to read.
      this.stream.resume();
    } catch {
      this.stream = undefined;
    }
    this.timer = setInterval(() => {
      const t = traffic();
      const key = `${t.requests} ${t.connections} ${t.bytesIn} ${t.bytesOut} ${t.openStreams}`;
      if (key === this.last) return;
      this.last = key;
      const { requests, connections, bytesIn, bytesOut, openStreams } = t;
      this.send({
        type: 'traffic',
        since: t.since.toISOString(),
        requests,
        connections,
        bytesIn,
        bytesOut,
        openStreams,
      });
    }, TRAFFIC_EVERY_MS);
    this.timer.unref();
  }

  send(message: ControlMessage): void {
    const s = this.stream;
    if (!s || s.destroyed || s.writableEnded) return;
    // Tiny messages, once a second at most: a full buffer (a stalled client) only means a late update.
    s.write(`${JSON.stringify(message)}\n`);
  }

  close(): void {
    clearInterval(this.timer);
    if (this.stream && !this.stream.destroyed) this.stream.close();
  }
}
