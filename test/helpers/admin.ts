// The admin endpoint of a nodecaddy started by a test: its port (from the "admin endpoint started" log line)
// and a scrape of /metrics read into samples.
import http from 'node:http';
import { waitFor } from './http.js';
import type { Nodecaddy } from './process.js';

/** Waits for the admin endpoint's start line in the JSON process log and returns its port. */
export async function adminPort(nc: Nodecaddy): Promise<number> {
  return waitFor(
    () => {
      const m = /"address":"[^"]*:(\d+)","msg":"admin endpoint started"/.exec(nc.stderr());
      return m ? Number(m[1]) : undefined;
    },
    10_000,
    'the admin endpoint',
  );
}

export interface AdminResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the admin endpoint; the Host header is 127.0.0.1:port unless given. */
export function admin(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`admin ${path} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Samples of a scrape, keyed as printed: `name{label="value",…}` (or `name` without labels). */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await admin(port, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  const samples = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The key of a sample: `sample('x_total', { site: 'a' })` → `x_total{site="a"}`. */
export function sample(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}
