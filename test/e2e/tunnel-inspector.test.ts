// The inspector and ngrok's agent API on the real `nodecaddy tunnel`: captured exchanges (raw bytes as
// ngrok's base64 `raw`), the bounds (count, 1 MB per body, the rest still forwarded), decoded bodies,
// replay and edit-and-replay reaching the real target, clearing, and the guards of a local API.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, startTarget, text, viaTunnel, type Target } from '../helpers/tunnel.js';

interface ApiRequest {
  id: string;
  uri: string;
  tunnel_name: string;
  remote_addr: string;
  duration: number;
  replay_of?: string;
  done: boolean;
  request: {
    method: string;
    uri: string;
    headers: Record<string, string[]>;
    raw: string;
    body_size: number;
    body_cut: boolean;
  };
  response: {
    status: string;
    status_code: number;
    headers: Record<string, string[]>;
    raw: string;
    body_size: number;
  } | null;
}

describe('the inspector and the agent API', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  let server: Nodecaddy;
  let client: Nodecaddy;
  let port: number;
  let base: string;
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 200, path);
    return (await res.json()) as T;
  };
  const list = async (query = '') =>
    (await get<{ requests: ApiRequest[] }>(`/api/requests/http${query}`)).requests;
  /** The captured exchange of the newest request for `uri`, once its response is in. */
  const captured = (uri: string) =>
    waitFor(
      async () => (await list()).find((r) => r.request.uri === uri && r.done),
      10_000,
      `capture of ${uri}`,
    );
  const replay = (params: Record<string, unknown>) =>
    fetch(`${base}/api/requests/http`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
    });

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
    port = await freePort();
    server = await startPublic(tmp.dir, port);
    client = await startClient(port, 'inspected', target.port, {
      args: ['-inspect', '127.0.0.1:0', '-inspect-keep', '8'],
    });
    base = /^Inspector (http:\/\/127\.0\.0\.1:\d+)$/m.exec(client.stdout())![1];
  });
  after(async () => {
    await client?.stop('SIGINT');
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('an exchange in full: ngrok fields, raw request and response bytes', async () => {
    const body = JSON.stringify({ hello: 'world' });
    const res = await viaTunnel(port, 'inspected', '/echo?full=1', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-custom': 'yes' },
    });
    assert.equal(await text(res), body);
    const entry = await captured('/echo?full=1');
    const detail = await get<ApiRequest>(`/api/requests/http/${entry.id}`);
    assert.equal(detail.uri, `/api/requests/http/${entry.id}`);
    assert.match(detail.id, /^[0-9a-f]{16}$/);
    assert.equal(detail.tunnel_name, 'inspected');
    assert.equal(detail.remote_addr, '127.0.0.1');
    assert.ok(detail.duration > 0);
    assert.equal(detail.request.method, 'POST');
    assert.deepEqual(detail.request.headers['X-Custom'], ['yes']);
    const rawReq = Buffer.from(detail.request.raw, 'base64').toString('utf8');
    assert.match(rawReq, /^POST \/echo\?full=1 HTTP\/1\.1\r\n/);
    assert.match(rawReq, /\r\nContent-Type: application\/json\r\n/);
    assert.ok(rawReq.endsWith(`\r\n\r\n${body}`));
    assert.equal(detail.response?.status, '200 OK');
    assert.equal(detail.response?.status_code, 200);
    const rawRes = Buffer.from(detail.response?.raw ?? '', 'base64').toString('utf8');
    assert.match(rawRes, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(rawRes.endsWith(`\r\n\r\n${body}`));
    // The list is small: no raw bytes in it.
    assert.equal((await list()).find((r) => r.id === entry.id)?.request.raw, '');
  });

  test('bodies over 1 MB: the rest is counted, marked cut, and still forwarded in full', async () => {
    const size = 3 * 1024 * 1024;
    const payload = Buffer.alloc(size, 'b');
    const res = await viaTunnel(port, 'inspected', '/sha?big=1', {
      method: 'POST',
      body: payload.toString(),
    });
    assert.equal(
      await text(res),
      createHash('sha256').update(payload).digest('hex'),
      'the target got all of it',
    );
    const entry = await captured('/sha?big=1');
    assert.equal(entry.request.body_size, size);
    assert.equal(entry.request.body_cut, true);
    const detail = await get<ApiRequest>(`/api/requests/http/${entry.id}`);
    const raw = Buffer.from(detail.request.raw, 'base64');
    assert.equal(raw.length - raw.indexOf('\r\n\r\n') - 4, 1024 * 1024, 'one MB kept');
    const refused = await replay({ id: entry.id });
    assert.equal(refused.status, 409);
    assert.match(((await refused.json()) as { msg: string }).msg, /replay needs the whole body/);
  });

  test('compressed bodies are shown decoded (gzip, br)', async () => {
    for (const enc of ['gzip', 'br']) {
      await text(await viaTunnel(port, 'inspected', `/compressed?enc=${enc}`));
      const entry = await captured(`/compressed?enc=${enc}`);
      const res = await fetch(`${base}/api/requests/http/${entry.id}/response/body`);
      assert.equal(res.headers.get('x-body-decoded'), enc);
      assert.deepEqual(await res.json(), { compressed: true, items: [1, 2, 3] });
    }
  });

  test('replay and edit-and-replay reach the real target and are linked to the original', async () => {
    await text(await viaTunnel(port, 'inspected', '/echo?replay=1', { method: 'PUT', body: 'first' }));
    const original = await captured('/echo?replay=1');
    const seenBefore = target.seen.filter((u) => u === '/echo?replay=1').length;

    const res = await replay({ id: original.id });
    assert.equal(res.status, 204);
    const id = res.headers.get('location')!.split('/').pop()!;
    const again = await waitFor(
      async () => (await list()).find((r) => r.id === id && r.done),
      10_000,
      'the replay',
    );
    assert.equal(again.replay_of, original.id);
    assert.equal(again.response?.status_code, 200);
    assert.equal(target.seen.filter((u) => u === '/echo?replay=1').length, seenBefore + 1);
    const replayed = await fetch(`${base}/api/requests/http/${id}/response/body`);
    assert.equal(await replayed.text(), 'first');

    const edited = await replay({
      id: original.id,
      method: 'POST',
      uri: '/echo?edited=1',
      headers: { 'X-Custom': 'changed', 'Content-Type': 'text/plain' },
      body: 'second',
    });
    assert.equal(edited.status, 204);
    const editedId = edited.headers.get('location')!.split('/').pop()!;
    const e = await waitFor(
      async () => (await list()).find((r) => r.id === editedId && r.done),
      10_000,
      'edit',
    );
    assert.equal(e.request.method, 'POST');
    assert.equal(e.response?.headers['X-Seen-Custom']?.[0], 'changed');
    assert.equal(e.response?.headers['X-Seen-Method']?.[0], 'POST');
    assert.equal(await (await fetch(`${base}/api/requests/http/${editedId}/response/body`)).text(), 'second');
    assert.ok(target.seen.includes('/echo?edited=1'));

    // The form encoding ngrok's older API (and `curl -d id=…`) used works too.
    const form = await fetch(`${base}/api/requests/http`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `id=${original.id}`,
    });
    assert.equal(form.status, 204);
  });

  test('the last N are kept (-inspect-keep); limit and tunnel_name; DELETE clears', async () => {
    for (let i = 0; i < 10; i++) await text(await viaTunnel(port, 'inspected', `/echo?n=${i}`));
    await captured('/echo?n=9');
    const all = await list();
    assert.equal(all.length, 8);
    assert.equal(all[0].request.uri, '/echo?n=9', 'newest first');
    assert.equal((await list('?limit=3')).length, 3);
    assert.equal((await list('?tunnel_name=inspected')).length, 8);
    assert.equal((await list('?tunnel_name=other')).length, 0);
    const tunnels = await get<{ tunnels: Record<string, unknown>[] }>('/api/tunnels');
    assert.equal(tunnels.tunnels[0].public_url, `http://inspected.tunnel.localhost:${port}`);
    assert.equal(tunnels.tunnels[0].proto, 'http');
    assert.deepEqual(tunnels.tunnels[0].config, { addr: `http://127.0.0.1:${target.port}`, inspect: true });
    assert.equal((await fetch(`${base}/api/requests/http`, { method: 'DELETE' })).status, 204);
    assert.equal((await list()).length, 0);
  });

  test('only for this machine: other Host names and cross-site writes are refused', async () => {
    const inspectorPort = Number(new URL(base).port);
    const raw = (head: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(inspectorPort, '127.0.0.1');
        let out = '';
        socket.on('data', (d: Buffer) => (out += d.toString()));
        socket.on('end', () => resolve(out));
        socket.on('error', reject);
        socket.end(head);
      });
    assert.match(
      await raw('GET /api/tunnels HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n'),
      /^HTTP\/1\.1 403/,
    );
    assert.match(
      await raw(
        `DELETE /api/requests/http HTTP/1.1\r\nHost: 127.0.0.1:${inspectorPort}\r\nOrigin: http://attacker.example\r\nConnection: close\r\n\r\n`,
      ),
      /^HTTP\/1\.1 403/,
    );
    assert.match(
      await raw(`GET / HTTP/1.1\r\nHost: localhost:${inspectorPort}\r\nConnection: close\r\n\r\n`),
      /^HTTP\/1\.1 200/,
    );
  });

  test('an event stream still arrives event by event while it is captured', async () => {
    const before = target.sseNext.length;
    const res = await viaTunnel(port, 'inspected', '/sse');
    await waitFor(() => target.sseNext.length > before, 5000, 'the stream at the target');
    let received = '';
    res.setEncoding('utf8').on('data', (d: string) => (received += d));
    for (const n of [1, 2, 3]) {
      target.sseNext[before](`event-${n}`);
      await waitFor(() => received.endsWith(`data: event-${n}\n\n`), 5000, `event ${n}`);
    }
    target.sseNext[before]('end');
    await new Promise((r) => res.once('end', r));
    const entry = await captured('/sse');
    assert.equal(entry.response?.body_size, received.length);
  });
});

describe('the inspector address', () => {
  test('by default the first free port of 4040-4050; a taken -inspect address is an error', async () => {
    const tmp = tempDir();
    const target = await startTarget();
    const port = await freePort();
    const server = await startPublic(tmp.dir, port);
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      // The helper passes -inspect off; a later -inspect with an empty value asks for the default.
      const byDefault = await startClient(port, 'default', target.port, { args: ['-inspect='] });
      const line = /^(Inspector http:\/\/127\.0\.0\.1:(\d+)|Inspector not started: .*)$/m.exec(
        byDefault.stdout(),
      );
      assert.ok(line, byDefault.stdout());
      // Other programs (or other tests) may hold some of these ports: any of them, or a clear line.
      if (line[2]) assert.ok(Number(line[2]) >= 4040 && Number(line[2]) <= 4050, line[0]);
      await byDefault.stop('SIGINT');

      const refused = await startClient(port, 'taken', target.port, {
        wait: false,
        args: ['-inspect', `127.0.0.1:${taken}`],
      });
      await waitFor(() => refused.child.exitCode !== null, 10_000, 'the client to give up');
      assert.equal(refused.child.exitCode, 1);
      assert.match(refused.stderr(), new RegExp(`the inspector cannot listen on 127\\.0\\.0\\.1:${taken}`));
    } finally {
      holder.close();
      await server.stop();
      await target.close();
      tmp.cleanup();
    }
  });
});
