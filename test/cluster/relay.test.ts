// The relay between instances, end to end in one process with real servers: a visitor → the front (the
// relaying instance, through RelayClient) → HTTP/2 → the holder's relay listener → the tunnel's upstream
// (PeerUpstream to a real app on a unix socket). Authentication has its own file (relay-auth.test.ts).
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { RelayClient } from '../../src/cluster/relay/client.js';
import { startRelayServer } from '../../src/cluster/relay/server.js';
import { silentLogger } from '../../src/core/logger.js';
import { collectFamilies } from '../../src/core/metrics/registry.js';
import { request, waitFor } from '../helpers/http.js';
import {
  CLUSTER_SECRET,
  Front,
  HOST,
  startCluster,
  targetHandler,
  within,
  type Cluster,
} from '../helpers/relay.js';

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  size: number;
  body: string;
}

for (const tls of [false, true]) {
  describe(`relay over ${tls ? 'TLS' : 'h2c'}`, () => {
    let c: Cluster;
    before(async () => {
      c = await startCluster({ tls });
    });
    after(() => c.close());

    test('a request and its body go to the holder as the front prepared them; the answer comes back whole', async () => {
      const res = await request(c.front.port, '/echo?q=1&r=%20', {
        method: 'POST',
        host: '127.0.0.1',
        headers: {
          host: `${HOST}:8080`,
          'content-type': 'text/plain',
          'x-visitor': 'v',
          'x-nodecaddy-relay-site': 'forged',
          'x-nodecaddy-relay-proof': 'forged',
        },
        body: 'hello through the relay',
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers['x-target'], 'yes');
      assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
      assert.ok(!Object.keys(res.headers).some((h) => h.startsWith('x-nodecaddy-relay-')));
      const echo = JSON.parse(res.body) as Echo;
      assert.equal(echo.method, 'POST');
      assert.equal(echo.url, '/echo?q=1&r=%20');
      assert.equal(echo.body, 'hello through the relay');
      assert.equal(echo.headers.host, `${HOST}:8080`);
      assert.equal(echo.headers['x-visitor'], 'v');
      // The front appended the visitor's address; the holder added nothing of its own.
      assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(echo.headers['x-forwarded-host'], `${HOST}:8080`);
      assert.ok(!Object.keys(echo.headers).some((h) => h.startsWith('x-nodecaddy-relay-')));
    });

    test('a bodiless GET and many requests at once', async () => {
      const all = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          request(c.front.port, `/echo?i=${i}`, { headers: { host: HOST } }),
        ),
      );
      all.forEach((res, i) => {
        assert.equal(res.status, 201);
        const echo = JSON.parse(res.body) as Echo;
        assert.equal(echo.url, `/echo?i=${i}`);
        assert.equal(echo.method, 'GET');
        assert.equal(echo.size, 0);
      });
    });

    test('HEAD gets the length and no body', async () => {
      const res = await request(c.front.port, '/big?n=100', { method: 'HEAD', headers: { host: HOST } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], '100');
      assert.equal(res.body, '');
      c.target.produced = 0;
    });

    test('a big upload streams through', async () => {
      const size = 48 * 1024 * 1024;
      const res = await new Promise<Echo>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: c.front.port, path: '/echo', method: 'PUT', headers: { host: HOST } },
          (r) => {
            let text = '';
            r.setEncoding('utf8');
            r.on('data', (d: string) => (text += d));
            r.on('end', () => resolve(JSON.parse(text) as Echo));
          },
        );
        req.on('error', reject);
        const chunk = Buffer.alloc(1024 * 1024, 1);
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!req.write(chunk)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      assert.equal(res.size, size);
    });

    test('a big download streams with bounded buffering: a visitor who stops reading stops the target', async () => {
      const total = 512 * 1024 * 1024;
      c.target.produced = 0;
      const req = http.request({
        host: '127.0.0.1',
        port: c.front.port,
        path: `/big?n=${total}`,
        headers: { host: HOST },
      });
      const res = await within(
        new Promise<IncomingMessage>((resolve, reject) => {
          req.on('response', resolve);
          req.on('error', reject);
          req.end();
        }),
        30_000,
        'the response head',
      );
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(total));
      res.pause();
      // The target stops producing once every buffer and window on the way is full.
      let last = -1;
      let still = 0;
      await waitFor(
        () => {
          still = c.target.produced === last ? still + 1 : 0;
          last = c.target.produced;
          return still >= 20;
        },
        30_000,
        'the target to stop producing',
      );
      // One stream's window (16 MiB) plus socket and stream buffers; the body is 512 MiB.
      assert.ok(c.target.produced < 40 * 1024 * 1024, `buffered ${c.target.produced} bytes of ${total}`);
      let received = 0;
      res.on('data', (d: Buffer) => (received += d.length));
      res.resume();
      await within(new Promise((resolve) => res.on('end', resolve)), 60_000, 'the end of the body');
      assert.equal(received, total);
    });

    test('server-sent events arrive one by one', async () => {
      const req = http.request({
        host: '127.0.0.1',
        port: c.front.port,
        path: '/sse',
        headers: { host: HOST },
      });
      const res = await within(
        new Promise<IncomingMessage>((resolve, reject) => {
          req.on('response', resolve);
          req.on('error', reject);
          req.end();
        }),
        30_000,
        'the response head',
      );
      assert.equal(res.headers['content-type'], 'text/event-stream');
      res.setEncoding('utf8');
      const events: string[] = [];
      res.on('data', (d: string) => {
        events.push(...d.split('\n\n').filter(Boolean));
        // The target sends its next event only once the visitor has the last one.
        c.target.nextEvent?.();
      });
      await within(new Promise((resolve) => res.on('end', resolve)), 60_000, 'the end of the body');
      assert.deepEqual(events, ['data: event 1', 'data: event 2', 'data: event 3']);
    });

    test('a WebSocket is relayed through extended CONNECT and closes from either side', async () => {
      const targetSockets: WebSocket[] = [];
      const onWs = (ws: WebSocket) => targetSockets.push(ws);
      c.target.on('ws', onWs);
      try {
        const ws = new WebSocket(`ws://127.0.0.1:${c.front.port}/chat?room=1`, { headers: { host: HOST } });
        await within(
          new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('error', reject);
          }),
          10_000,
          'the WebSocket to open',
        );
        const echoed = new Promise<string>((resolve) =>
          ws.once('message', (d: Buffer) => resolve(d.toString())),
        );
        ws.send('ping over h2');
        assert.equal(await within(echoed, 10_000, 'the echo'), 'ping over h2');
        const binary = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
        ws.send(Buffer.alloc(200_000, 9));
        assert.equal((await binary).length, 200_000);
        // The target closes: the visitor sees it.
        const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
        ws.send('close-please');
        assert.equal(await within(closed, 10_000, 'the visitor to see the close'), 4001);

        // The visitor closes (drops the connection): the target's socket closes.
        const ws2 = new WebSocket(`ws://127.0.0.1:${c.front.port}/chat`, { headers: { host: HOST } });
        await within(new Promise((resolve) => ws2.once('open', resolve)), 10_000, 'the second WebSocket');
        await waitFor(() => targetSockets.length === 2, 5000, 'the second socket at the target');
        const targetClosed = new Promise((resolve) => targetSockets[1].once('close', resolve));
        ws2.terminate();
        await within(targetClosed, 10_000, "the target's socket to close");
      } finally {
        c.target.off('ws', onWs);
      }
    });

    test('an Upgrade the target refuses is answered as a response', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${c.front.port}/ws-refused`, { headers: { host: HOST } });
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => resolve(-1));
      });
      assert.equal(status, 403);
    });

    test("the holder's errors come back as the same TunnelError", async () => {
      const res = await request(c.front.port, '/refuse', { headers: { host: HOST } });
      assert.equal(res.status, 401);
      assert.equal(res.headers['x-test-code'], 'unauthorized');
      assert.equal(res.headers['www-authenticate'], 'Basic realm="tunnel"');
    });

    test('a name the holder does not hold is not-here', async () => {
      const res = await request(c.front.port, '/echo', { headers: { host: 'bob.example' } });
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-test-code'], 'not-here');
    });

    test('a visitor who leaves cancels the request at the target', async () => {
      const atTarget = new Promise<ServerResponse>((resolve) =>
        c.target.once('request', (_req: IncomingMessage, res: ServerResponse) => resolve(res)),
      );
      const req = http.request({
        host: '127.0.0.1',
        port: c.front.port,
        path: '/hold',
        headers: { host: HOST },
      });
      req.on('error', () => undefined);
      req.end();
      const targetRes = await atTarget;
      const cancelled = new Promise((resolve) => targetRes.once('close', resolve));
      req.destroy();
      await within(cancelled, 10_000, 'the request to be cancelled at the target');
      assert.equal(targetRes.writableEnded, false);
    });

    test('evict reaches the handler with the token', async () => {
      const client = c.front.client;
      const address = `127.0.0.1:${c.relayPort}`;
      assert.equal(await client.evict(address, '*.example#abc', HOST, 'tok-other'), false);
      assert.equal(await client.evict(address, '*.example#abc', HOST, 'tok-1'), true);
      assert.deepEqual(c.evicted, [HOST]);
    });
  });
}

test('a holder slower than the response timeout is 504, and the target sees the request cancelled', async () => {
  const c = await startCluster({ timeoutMs: 300 });
  try {
    const atTarget = new Promise<ServerResponse>((resolve) =>
      c.target.once('request', (_req: IncomingMessage, res: ServerResponse) => resolve(res)),
    );
    const res = await request(c.front.port, '/slow', { headers: { host: HOST } });
    assert.equal(res.status, 504);
    assert.equal(res.headers['x-test-code'], 'timeout');
    const targetRes = await atTarget;
    if (!targetRes.destroyed)
      await within(
        new Promise((resolve) => targetRes.once('close', resolve)),
        10_000,
        'the cancel at the target',
      );
  } finally {
    await c.close();
  }
});

test('a peer that is down or does not answer is 502 peer-unreachable, not a wait for the response timeout', async () => {
  // Accepts TCP and says nothing (a hung instance), and a port nobody listens on.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const client = new RelayClient({ secret: CLUSTER_SECRET, log: silentLogger(), connectTimeoutMs: 500 });
  let address = '';
  const front = new Front(client, () => address, undefined, 120_000);
  await front.start();
  try {
    for (const port of [closedPort, silentPort]) {
      address = `127.0.0.1:${port}`;
      const res = await request(front.port, '/echo', { headers: { host: HOST }, timeoutMs: 20_000 });
      assert.equal(res.status, 502, `port ${port}`);
      assert.equal(res.headers['x-test-code'], 'peer-unreachable');
      // Right after, the peer is known to be down: the next request fails at once with the same answer.
      const again = await request(front.port, '/echo', { headers: { host: HOST } });
      assert.equal(again.headers['x-test-code'], 'peer-unreachable');
    }
  } finally {
    await front.close();
    silent.close();
  }
});

test('a holder that restarts on the same port is reconnected to', async () => {
  const c = await startCluster();
  try {
    // Both sessions of the pool are open.
    for (let i = 0; i < 4; i++) {
      assert.equal((await request(c.front.port, '/echo', { headers: { host: HOST } })).status, 201);
    }
    // The holder goes away (its sessions are cut) and comes back on the same port.
    const port = c.relayPort;
    await c.closeHolder();
    const again = await startRelayServer({
      host: '127.0.0.1',
      port,
      secret: CLUSTER_SECRET,
      tls: false,
      handler: targetHandler(c.target),
      log: silentLogger(),
    });
    try {
      const res = await waitFor(
        async () => {
          const r = await request(c.front.port, '/echo', { headers: { host: HOST } });
          return r.status === 201 && r;
        },
        10_000,
        'a relayed answer after the restart',
      );
      assert.equal(res.status, 201);
      // Every session of the pool was replaced, not only the one that answered first.
      for (let i = 0; i < 4; i++) {
        assert.equal((await request(c.front.port, '/echo', { headers: { host: HOST } })).status, 201);
      }
    } finally {
      await again.close();
    }
  } finally {
    await c.close();
  }
});

test('the relayed requests are counted in and out', async () => {
  const families = await collectFamilies();
  const relayed = families.find((f) => f.name === 'nodecaddy_cluster_relayed_requests_total');
  assert.ok(relayed, 'the family is there');
  for (const direction of ['out', 'in']) {
    const series = relayed.series.find((s) => s.labels[0] === direction);
    assert.ok(series && series.value > 0, direction);
  }
  const failures = families.find((f) => f.name === 'nodecaddy_cluster_relay_failures_total');
  const codes = failures?.series.map((s) => s.labels.join('/')) ?? [];
  assert.ok(codes.includes('out/not-here'), codes.join());
  assert.ok(codes.includes('out/peer-unreachable'), codes.join());
});
