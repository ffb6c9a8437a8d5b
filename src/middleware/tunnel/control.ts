// The server's side of a session's control messages: CONTROL frames of JSON, `online` first, then the
// tunnel's traffic whenever it changed.
import { CONTROL } from '../../tunnel/frames.js';
import type { Mux } from '../../tunnel/mux.js';
import type { ControlMessage, TrafficCounters } from '../../tunnel/protocol.js';

/** How often the client hears about its traffic (when it changed). */
const TRAFFIC_EVERY_MS = 1000;

export class ControlChannel {
  private readonly timer: NodeJS.Timeout;
  private last = '';

  constructor(
    private readonly mux: Mux,
    traffic: () => TrafficCounters & { since: Date },
  ) {
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
    this.mux.send(CONTROL, 0, 0, Buffer.from(JSON.stringify(message)));
  }

  close(): void {
    clearInterval(this.timer);
  }
}
