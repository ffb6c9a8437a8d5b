// New TLS connections per second: `openssl s_time -new`, one process per concurrent client, each opening a
// connection, doing a full TLS 1.3 handshake, sending one request with `Connection: close` and reading the answer
// to the end, again and again for the run's duration.
//
// Why not wrk (`Connection: close`) or h2load (one request per connection): both resume the TLS session when they
// reconnect (they reuse their OpenSSL object after a clean shutdown), so they measure a mix of full and resumed
// handshakes that depends on the server (a Node server saw 189 of 384 wrk reconnections and 490 of 500 h2load
// ones resumed). s_time -new starts every connection without a session: every server does one full handshake
// (ECDHE key exchange and an ECDSA signature) per connection, which is what a new visitor or a scanner costs.
import { spawn } from 'node:child_process';
import type { WrkResult } from './wrk.js';

export interface HandshakeOptions {
  port: number;
  /** Concurrent clients (s_time processes). */
  connections: number;
  seconds: number;
  path: string;
  /** Host header value. */
  host: string;
}

interface OneClient {
  connections: number;
  bytesPerConnection: number;
  failed: boolean;
}

/**
 * s_time sends `GET <page> HTTP/1.0` and reads to EOF. The page is given with the rest of a complete HTTP/1.1
 * request after it (the trailing ` HTTP/1.0` becomes a header value), so that each server gets a request with a
 * Host header, as a browser sends, and closes the connection after its answer.
 */
function requestLine(o: HandshakeOptions): string {
  return `${o.path} HTTP/1.1\r\nHost: ${o.host}\r\nConnection: close\r\nX-Bench:`;
}

function runClient(o: HandshakeOptions): Promise<OneClient> {
  const args = ['s_time', '-connect', `127.0.0.1:${o.port}`, '-new', '-time', String(o.seconds)];
  args.push('-www', requestLine(o));
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 30) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // "N connections in T real seconds, B bytes read per connection"
      const m = /(\d+) connections in \d+ real seconds, (\d+) bytes read per connection/.exec(out);
      resolve({
        connections: m ? Number(m[1]) : 0,
        bytesPerConnection: m ? Number(m[2]) : 0,
        failed: code !== 0 || !m,
      });
    });
  });
}

/** Runs the clients side by side; req/s is connections per second of wall time. */
export async function handshakes(o: HandshakeOptions, minBytes: number): Promise<WrkResult> {
  const t0 = performance.now();
  const clients = await Promise.all(Array.from({ length: o.connections }, () => runClient(o)));
  const seconds = (performance.now() - t0) / 1000;
  const requests = clients.reduce((n, c) => n + c.connections, 0);
  const bytes = clients.reduce((n, c) => n + c.connections * c.bytesPerConnection, 0);
  const failed = clients.filter((c) => c.failed).length;
  const short = clients.some((c) => c.connections > 0 && c.bytesPerConnection < minBytes);
  return {
    requests,
    rps: requests / seconds,
    bytesPerSec: bytes / seconds,
    // s_time measures no latencies.
    p50ms: NaN,
    p99ms: NaN,
    errors: failed,
    problem: short ? `answers shorter than ${minBytes} bytes` : undefined,
  };
}
