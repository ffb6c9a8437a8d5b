// The tunnel when things go wrong: wrong secret, hijack attempts, dead clients, restarts, reloads, and a
// tunnel held by another server process (what -workers does).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import {
  caddyfile,
  startClient,
  startPublic,
  startTarget,
  text,
  viaTunnel,
  type Target,
} from '../helpers/tunnel.js';

async function status(port: number, name: string): Promise<number> {
  const res = await viaTunnel(port, name, '/echo');
  await text(res);
  return res.statusCode ?? 0;
}

describe('tunnel resilience', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  const procs: Nodecaddy[] = [];
  const track = <T extends Nodecaddy>(p: T): T => (procs.push(p), p);

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await target?.close();
    tmp?.cleanup();
  });

  test('a wrong secret is refused: a clear message and exit 1 on the client, a log line on the server', async () => {
    const port = await freePort();
    const server = track(await startPublic(tmp.dir, port, { file: 'wrong' }));
    const client = track(
      await startClient(port, 'mallory', target.port, { secret: 'not-the-secret', wait: false }),
    );
    assert.equal(await client.exited, 1);
    assert.match(client.stdout(), /tunnel refused by tunnel\.localhost:\d+: the tunnel secret is wrong/);
    await waitFor(() => server.stderr().includes('tunnel refused: wrong secret'), 5000, 'server log line');
    assert.equal(await status(port, 'mallory'), 502);
    await server.stop();
  });

  test('a name held by a live client cannot be taken; a killed client gives 502 at once', async () => {
    const port = await freePort();
    const server = track(await startPublic(tmp.dir, port, { file: 'hijack' }));
    const owner = track(await startClient(port, 'alice', target.port));
    const thief = track(
      await startClient(port, 'alice', target.port, { wait: false, args: ['-host-header', 'thief'] }),
    );
    await waitFor(() => thief.stdout().includes('in use by another tunnel client'), 10_000, 'refusal');
    const res = await viaTunnel(port, 'alice', '/echo');
    await text(res);
    assert.equal(res.headers['x-seen-host'], `127.0.0.1:${target.port}`, 'still the owner');
    await waitFor(() => server.stderr().includes('tunnel refused: name held by another client'), 5000, 'log');

    owner.child.kill('SIGKILL');
    await owner.exited;
    const t0 = Date.now();
    // The thief keeps retrying and may now take the free name; until then the name answers 502 at once.
    await thief.stop('SIGKILL');
    await waitFor(async () => (await status(port, 'alice')) === 502, 3000, '502 after the client died');
    assert.ok(Date.now() - t0 < 3000);
    await server.stop();
  });

  test('the server restarts and the client is back within seconds, by itself', async () => {
    const port = await freePort();
    let server = track(await startPublic(tmp.dir, port, { file: 'restart' }));
    const client = track(await startClient(port, 'alice', target.port));
    assert.equal(await status(port, 'alice'), 200);
    await server.stop();
    await waitFor(() => client.stdout().includes('reconnecting in'), 10_000, 'client notices');
    server = track(await startPublic(tmp.dir, port, { file: 'restart' }));
    const t0 = Date.now();
    await waitFor(() => client.stdout().includes('Reconnected:'), 10_000, 'client back');
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(await status(port, 'alice'), 200);
    await client.stop('SIGINT');
    await server.stop();
  });

  test('a reload that keeps the site keeps the session', async () => {
    const port = await freePort();
    const server = track(await startPublic(tmp.dir, port, { file: 'reload' }));
    const client = track(await startClient(port, 'alice', target.port));
    assert.equal(await status(port, 'alice'), 200);
    writeFileSync(path.join(tmp.dir, 'reload'), caddyfile(port, '\t\tmax_streams 500\n'));
    await waitFor(() => server.stderr().includes('config reloaded'), 10_000, 'reload');
    assert.equal(await status(port, 'alice'), 200);
    assert.doesNotMatch(client.stdout(), /reconnecting|Reconnected/);
    assert.doesNotMatch(server.stderr(), /tunnel disconnected/);
    await client.stop('SIGINT');
    await server.stop();
  });

  test('a client whose connection went silent reconnects and replaces its own stale session at once', async () => {
    const port = await freePort();
    // A long server heartbeat: only the client notices the dead path, so the server still holds the session.
    const server = track(
      await startPublic(tmp.dir, port, { file: 'stale', extra: '\t\tping_interval 5m\n' }),
    );
    const relayPort = await freePort();
    let frozen = false;
    const pairs: net.Socket[] = [];
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(port, '127.0.0.1');
      pairs.push(inbound, outbound);
      for (const [a, b] of [
        [inbound, outbound],
        [outbound, inbound],
      ] as const) {
        a.on('data', (d: Buffer) => !frozen && b.write(d));
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((r) => relay.listen(relayPort, '127.0.0.1', r));
    try {
      const client = track(
        await startClient(port, 'alice', target.port, { args: ['-dial', `127.0.0.1:${relayPort}`] }),
      );
      frozen = true; // the path goes silent: nothing is closed, nothing arrives
      await waitFor(() => client.stdout().includes('reconnecting in'), 15_000, 'heartbeat notices');
      frozen = false;
      await waitFor(() => client.stdout().includes('Reconnected:'), 10_000, 'reconnected');
      assert.doesNotMatch(client.stdout(), /in use by another/);
      assert.equal(await status(port, 'alice'), 200);
      await client.stop('SIGINT');
    } finally {
      for (const s of pairs) s.destroy();
      relay.close();
      await server.stop();
    }
  });

  test('two server processes sharing NODECADDY_RUN_DIR serve one tunnel, and guard its name together', async () => {
    const env = { NODECADDY_RUN_DIR: path.join(tmp.dir, 'run') };
    const [portA, portB] = [await freePort(), await freePort()];
    const a = track(await startPublic(tmp.dir, portA, { file: 'A', env }));
    const b = track(await startPublic(tmp.dir, portB, { file: 'B', env }));
    const client = track(await startClient(portA, 'alice', target.port));

    const res = await viaTunnel(portB, 'alice', '/echo', { method: 'POST', body: 'via B' });
    assert.equal(res.statusCode, 200);
    assert.equal(await text(res), 'via B');
    assert.equal(res.headers['x-seen-xff'], '127.0.0.1', 'X-Forwarded-For appended once');

    const ws = new WebSocket(`ws://127.0.0.1:${portB}/ws`, {
      headers: { host: `alice.tunnel.localhost:${portB}` },
    });
    const greeting = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d: Buffer) => resolve(d.toString('utf8')));
      ws.once('error', reject);
    });
    assert.equal(greeting, `hello 127.0.0.1:${target.port}`);
    ws.send('ping');
    assert.equal(
      await new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString('utf8')))),
      'ping',
    );
    ws.close();

    const thief = track(await startClient(portB, 'alice', target.port, { wait: false }));
    await waitFor(() => thief.stdout().includes('in use by another tunnel client'), 10_000, 'refused on B');
    await thief.stop('SIGKILL');

    client.child.kill('SIGKILL');
    await waitFor(async () => (await status(portB, 'alice')) === 502, 3000, '502 on B');
    await Promise.all([a.stop(), b.stop()]);
  });
});

describe('tunnel limits and timeouts', () => {
  test('sessions per secret, streams per session, and the response timeout', async () => {
    const tmp = tempDir();
    const target = await startTarget();
    const port = await freePort();
    const extra = '\t\tmax_sessions 1\n\t\tmax_streams 2\n\t\ttimeout 1s\n';
    // max_sessions and max_streams are counted per process (README): one worker makes the limits exact.
    const server = await startPublic(tmp.dir, port, { extra, workers: 1 });
    const clients: Nodecaddy[] = [];
    try {
      clients.push(await startClient(port, 'alice', target.port));
      const bob = await startClient(port, 'bob', target.port, { wait: false });
      clients.push(bob);
      await waitFor(
        () => bob.stdout().includes('this secret already holds 1 tunnels'),
        10_000,
        'session limit',
      );

      const t0 = Date.now();
      const hanging = [viaTunnel(port, 'alice', '/hang'), viaTunnel(port, 'alice', '/hang')];
      await waitFor(
        async () => {
          const third = await viaTunnel(port, 'alice', '/echo');
          const body = await text(third);
          return third.statusCode === 503 && /carrying its limit of 2 requests/.test(body);
        },
        5000,
        'stream limit',
      );
      for (const res of await Promise.all(hanging)) {
        assert.equal(res.statusCode, 504);
        assert.match(await text(res), /did not answer in time/);
      }
      assert.ok(Date.now() - t0 >= 900, 'the timeout, not an early failure');
      assert.equal(await status(port, 'alice'), 200, 'streams are given back');
    } finally {
      await Promise.all(clients.map((c) => c.stop('SIGKILL')));
      await server.stop();
      await target.close();
      tmp.cleanup();
    }
  });
});
