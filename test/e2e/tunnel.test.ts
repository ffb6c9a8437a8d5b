// The tunnel end to end, traffic: real nodecaddy, real `nodecaddy tunnel` client, real local target.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import {
  patternStream,
  sha256Of,
  startClient,
  startPublic,
  startTarget,
  text,
  viaTunnel,
  type Target,
} from '../helpers/tunnel.js';

describe('tunnel traffic', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  let server: Nodecaddy;
  let client: Nodecaddy;
  let port: number;

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
    port = await freePort();
    server = await startPublic(tmp.dir, port);
    client = await startClient(port, 'alice', target.port);
  });
  after(async () => {
    await client?.stop('SIGINT');
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('the client prints the public URL and one line per request', async () => {
    assert.match(
      client.stdout(),
      new RegExp(
        `^Forwarding http://alice\\.tunnel\\.localhost:${port} -> http://127\\.0\\.0\\.1:${target.port}$`,
        'm',
      ),
    );
    const res = await viaTunnel(port, 'alice', '/echo?q=1', { method: 'POST', body: 'hi' });
    assert.equal(res.statusCode, 200);
    assert.equal(await text(res), 'hi');
    await waitFor(() => /^POST \/echo\?q=1 200 \d+ms$/m.test(client.stdout()), 5000, 'request line');
  });

  test('headers: Host rewritten, X-Forwarded-* set and appended, hop-by-hop stripped', async () => {
    const res = await viaTunnel(port, 'alice', '/echo', {
      headers: { 'x-forwarded-for': '10.0.0.1', connection: 'keep-alive, x-custom', 'x-custom': 'secret' },
    });
    await text(res);
    assert.equal(res.headers['x-seen-host'], `127.0.0.1:${target.port}`);
    assert.equal(res.headers['x-seen-xff'], '10.0.0.1, 127.0.0.1');
    assert.equal(res.headers['x-seen-xfh'], `alice.tunnel.localhost:${port}`);
    assert.equal(res.headers['x-seen-xfp'], 'http');
    assert.equal(res.headers['x-seen-custom'], '', 'a header named in Connection does not cross');
  });

  test('200 concurrent requests with distinct bodies are all answered correctly', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const body = `request-${i}-${'x'.repeat(i * 37)}`;
        const res = await viaTunnel(port, 'alice', `/echo?i=${i}`, { method: 'PUT', body, agent });
        return { i, status: res.statusCode, ok: (await text(res)) === body };
      }),
    );
    agent.destroy();
    for (const r of results) assert.deepEqual(r, { i: r.i, status: 200, ok: true });
  });

  test('100 MB each way, checked by sha256', async () => {
    const size = 100 * 1024 * 1024;
    const up = await viaTunnel(port, 'alice', '/sha', {
      method: 'POST',
      body: patternStream(size, 3),
      headers: { 'content-length': String(size) },
    });
    const expectedUp = await sha256Of(patternStream(size, 3));
    assert.equal(up.statusCode, 200);
    assert.equal(await text(up), expectedUp);
    const down = await viaTunnel(port, 'alice', `/big?n=${size}`);
    assert.equal(down.statusCode, 200);
    assert.equal(await sha256Of(down), await sha256Of(patternStream(size, 7)));
  });

  test('a WebSocket echoes through the tunnel', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { host: `alice.tunnel.localhost:${port}` },
    });
    const messages: string[] = [];
    ws.on('message', (d: Buffer) => messages.push(d.toString('utf8')));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await waitFor(() => messages.length === 1, 5000, 'greeting');
    assert.equal(messages[0], `hello 127.0.0.1:${target.port}`);
    const big = createHash('sha256').update('x').digest('hex').repeat(2000);
    for (const m of ['one', 'two', big]) ws.send(m);
    await waitFor(() => messages.length === 4, 5000, 'echoes');
    assert.deepEqual(messages.slice(1), ['one', 'two', big]);
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });

  test('server-sent events arrive one by one', async () => {
    const before = target.sseNext.length;
    const res = await viaTunnel(port, 'alice', '/sse', { headers: { accept: 'text/event-stream' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    await waitFor(() => target.sseNext.length > before, 5000, 'SSE stream at the target');
    const send = target.sseNext[before];
    let received = '';
    res.setEncoding('utf8').on('data', (d: string) => (received += d));
    for (const n of [1, 2, 3]) {
      send(`event-${n}`);
      // Each event must reach the visitor before the target sends the next one: nothing buffers it.
      await waitFor(() => received.endsWith(`data: event-${n}\n\n`), 5000, `event ${n}`);
    }
    send('end');
    await new Promise((r) => res.once('end', r));
    assert.equal(received, 'data: event-1\n\ndata: event-2\n\ndata: event-3\n\n');
  });

  test('a name with no client is a 502 saying so; a target that is down is a 502 saying so', async () => {
    const none = await viaTunnel(port, 'nobody', '/');
    assert.equal(none.statusCode, 502);
    assert.match(
      await text(none),
      /^502 Bad Gateway\nno tunnel client is connected for nobody\.tunnel\.localhost\n$/,
    );

    const deadPort = await freePort();
    const bob = await startClient(port, 'bob', deadPort);
    try {
      const down = await viaTunnel(port, 'bob', '/x');
      assert.equal(down.statusCode, 502);
      assert.match(
        await text(down),
        new RegExp(`could not reach http://127\\.0\\.0\\.1:${deadPort}: connection refused`),
      );
    } finally {
      await bob.stop('SIGINT');
    }
  });

  test('Ctrl-C closes the client cleanly and the name is free at once', async () => {
    const carol = await startClient(port, 'carol', target.port);
    assert.equal((await viaTunnel(port, 'carol', '/echo')).statusCode, 200);
    assert.equal(await carol.stop('SIGINT'), 0);
    assert.match(carol.stdout(), /Closing the tunnel/);
    await waitFor(
      async () => (await viaTunnel(port, 'carol', '/')).statusCode === 502,
      3000,
      '502 after Ctrl-C',
    );
  });
});
