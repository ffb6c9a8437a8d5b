// Per-tunnel basic auth set by the client (checked by the server before anything reaches the laptop), and
// the traffic the server counts per tunnel: shown by the client (agent API) and logged when a session ends.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, startTarget, text, viaTunnel, type Target } from '../helpers/tunnel.js';

const AUTH = `Basic ${Buffer.from('visitor:open sesame').toString('base64')}`;

/** GET on the client's agent API. */
async function api(base: string, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`);
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

function inspectorUrl(client: Nodecaddy): string {
  const m = /^Inspector (http:\/\/\S+)$/m.exec(client.stdout());
  assert.ok(m, client.stdout());
  return m[1];
}

describe('per-tunnel basic auth and traffic', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  let server: Nodecaddy;
  let client: Nodecaddy;
  let port: number;

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
    port = await freePort();
    // Two workers: a request may reach the worker without the session, which relays it (and the 401).
    server = await startPublic(tmp.dir, port, { workers: 2 });
    client = await startClient(port, 'guarded', target.port, {
      args: ['-basic-auth', 'visitor:open sesame', '-inspect', '127.0.0.1:0'],
    });
  });
  after(async () => {
    await client?.stop('SIGKILL');
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('without the credentials: 401 asking for them, and the target never sees the request', async () => {
    for (const [i, authorization] of [undefined, 'Basic d3Jvbmc6cGFzcw==', 'Bearer x'].entries()) {
      const res = await viaTunnel(port, 'guarded', `/echo?denied=${i}`, {
        method: 'POST',
        body: 'secret payload',
        headers: authorization ? { authorization } : {},
      });
      assert.equal(res.statusCode, 401);
      assert.equal(
        res.headers['www-authenticate'],
        'Basic realm="guarded.tunnel.localhost", charset="UTF-8"',
      );
      await text(res);
    }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { host: `guarded.tunnel.localhost:${port}` },
    });
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res: http.IncomingMessage) => resolve(res.statusCode ?? 0));
      ws.once('open', () => reject(new Error('a WebSocket opened without credentials')));
      ws.once('error', reject);
    });
    assert.equal(status, 401);
    assert.ok(!target.seen.some((u) => u.includes('denied') || u === '/ws'), target.seen.join(' '));
  });

  test('with them: through, and the tunnel password is not passed on to the target', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await viaTunnel(port, 'guarded', `/echo?ok=${i}`, {
        method: 'POST',
        body: 'x'.repeat(1000),
        headers: { authorization: AUTH },
      });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-seen-auth'], '');
      assert.equal(await text(res), 'x'.repeat(1000));
    }
  });

  test('the server counts the traffic; the client shows it; the server logs it at the end', async () => {
    const base = inspectorUrl(client);
    const traffic = await waitFor(
      async () => {
        const t = ((await api(base, '/api/tunnels')).tunnels as Record<string, unknown>[])[0]
          .traffic as Record<string, number> | null;
        return t && t.requests >= 6 ? t : undefined;
      },
      10_000,
      'traffic on the client',
    );
    assert.equal(traffic.requests, 6, 'refused visitors never entered the tunnel');
    assert.equal(traffic.connections, 0);
    assert.ok(traffic.bytes_in > 6000, `bytes in ${traffic.bytes_in}`);
    assert.ok(traffic.bytes_out > 6000, `bytes out ${traffic.bytes_out}`);
    assert.equal(traffic.open_streams, 0);

    await client.stop('SIGINT');
    const line = await waitFor(
      () =>
        server
          .stderr()
          .split('\n')
          .filter((l) => l.includes('"tunnel disconnected"'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.host === 'guarded.tunnel.localhost'),
      10_000,
      'the log line at the end of the session',
    );
    assert.equal(line.requests, 6);
    assert.ok(Number(line.bytesIn) >= traffic.bytes_in && Number(line.bytesOut) >= traffic.bytes_out);
  });
});
