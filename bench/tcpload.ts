// The load of the TCP scenarios: `connections` sockets read whatever the service sends for `seconds`;
// the result is the bytes per second read, in the shape of a wrk result (no requests, no latencies).
import net from 'node:net';
import type { WrkResult } from './wrk.js';

export function tcpLoad(o: { port: number; connections: number; seconds: number }): Promise<WrkResult> {
  return new Promise((resolve) => {
    let bytes = 0;
    let errors = 0;
    const sockets: net.Socket[] = [];
    const started = process.hrtime.bigint();
    for (let i = 0; i < o.connections; i++) {
      const socket = net.connect({ port: o.port, host: '127.0.0.1', noDelay: true });
      socket.on('data', (d: Buffer) => (bytes += d.length));
      socket.on('error', () => errors++);
      sockets.push(socket);
    }
    setTimeout(() => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      for (const s of sockets) s.destroy();
      resolve({ requests: 0, rps: 0, bytesPerSec: bytes / seconds, p50ms: 0, p99ms: 0, errors });
    }, o.seconds * 1000);
  });
}

/** Resolves once something accepts connections on the port (or rejects after deadlineMs). */
export async function tcpReady(port: number, deadlineMs = 15_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing accepts connections on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
