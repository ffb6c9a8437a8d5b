// A visitor who goes away cancels the request at the local target, as `proxy` does: an endless event
// stream the visitor left, and a slow request abandoned before its response head, with one and two workers,
// and through another server process (the worker-to-worker relay). Each must reach the target within 1 s.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, startTarget, type Target } from '../helpers/tunnel.js';

const CANCEL_WITHIN_MS = 1000;

/** Opens `urlPath` on the public server; resolves once `ready` says so, with a function that hangs up. */
function visit(
  port: number,
  name: string,
  urlPath: string,
  ready: 'first-event' | 'sent',
): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: urlPath,
      headers: { host: `${name}.tunnel.localhost:${port}` },
      agent: false,
    });
    const hangUp = () => req.destroy();
    req.on('error', () => undefined);
    req.on('response', (res) => {
      res.once('data', () => {
        if (ready === 'first-event') resolve(hangUp);
      });
    });
    req.once('close', () => reject(new Error(`${urlPath} closed before it was ready`)));
    req.end(() => {
      if (ready === 'sent') resolve(hangUp);
    });
  });
}

/** Leaves an endless stream after its first event and a slow request before its head; both must be cut. */
async function leaveAndCheck(target: Target, port: number, name: string, tag: string): Promise<void> {
  const sse = `/tick?${tag}`;
  const slow = `/hang?${tag}`;
  const hangUpSse = await visit(port, name, sse, 'first-event');
  const hangUpSlow = await visit(port, name, slow, 'sent');
  await waitFor(() => target.seen.includes(slow), 5000, `${slow} at the target`);
  assert.ok(!target.cut.includes(sse) && !target.cut.includes(slow), 'both still open at the target');
  hangUpSse();
  hangUpSlow();
  await waitFor(
    () => target.cut.includes(sse) && target.cut.includes(slow),
    CANCEL_WITHIN_MS,
    `the target to see ${sse} and ${slow} cancelled (cut so far: ${target.cut.join(' ')})`,
  );
}

describe('a visitor who goes away cancels the request at the target', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  const procs: Nodecaddy[] = [];

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await target?.close();
    tmp?.cleanup();
  });

  for (const workers of [1, 2]) {
    test(`with -workers ${workers}`, async () => {
      const port = await freePort();
      const server = await startPublic(tmp.dir, port, { file: `w${workers}`, workers });
      procs.push(server);
      const client = await startClient(port, `w${workers}`, target.port);
      procs.push(client);
      // Several visitors, each on its own connection: with two workers they land on both of them.
      for (let i = 0; i < 4; i++) await leaveAndCheck(target, port, `w${workers}`, `w${workers}-${i}`);
      await client.stop('SIGINT');
      await server.stop();
    });
  }

  test('through another server process that relays to the one holding the tunnel', async () => {
    const env = { NODECADDY_RUN_DIR: path.join(tmp.dir, 'run') };
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startPublic(tmp.dir, portA, { file: 'A', env, workers: 1 });
    const b = await startPublic(tmp.dir, portB, { file: 'B', env, workers: 1 });
    procs.push(a, b);
    const client = await startClient(portA, 'peer', target.port);
    procs.push(client);
    // B holds no session: every request of B crosses to A over A's unix socket.
    await leaveAndCheck(target, portB, 'peer', 'peer-0');
    await leaveAndCheck(target, portB, 'peer', 'peer-1');
    await client.stop('SIGINT');
    await Promise.all([a.stop(), b.stop()]);
  });
});

describe('idle_timeout', () => {
  test('a request quiet both ways for idle_timeout is cut at the visitor and the target; a busy one is not', async () => {
    const tmp = tempDir();
    const target = await startTarget();
    const port = await freePort();
    const server = await startPublic(tmp.dir, port, { extra: '\t\tidle_timeout 600ms\n', workers: 1 });
    const client = await startClient(port, 'idle', target.port);
    try {
      // /sse sends its head and then nothing; /tick an event every 50 ms.
      const quiet = await openStream(port, 'idle', '/sse?idle');
      const busy = await openStream(port, 'idle', '/tick?idle');
      await waitFor(() => target.cut.includes('/sse?idle'), 10_000, 'the quiet request cut at the target');
      await quiet.closed;
      assert.equal(quiet.complete, false, 'the visitor saw the quiet response cut, not ended');
      assert.ok(!target.cut.includes('/tick?idle'), 'the busy stream is still open');
      assert.ok(busy.events() > 0);
      busy.hangUp();
    } finally {
      await client.stop('SIGINT');
      await server.stop();
      await target.close();
      tmp.cleanup();
    }
  });
});

/** A GET whose response head came; `closed` resolves when the response is over (`complete`: ended normally). */
async function openStream(
  port: number,
  name: string,
  urlPath: string,
): Promise<{ closed: Promise<void>; complete: boolean; events(): number; hangUp(): void }> {
  const req = http.request({
    host: '127.0.0.1',
    port,
    path: urlPath,
    headers: { host: `${name}.tunnel.localhost:${port}` },
    agent: false,
  });
  req.on('error', () => undefined);
  req.end();
  const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
  let events = 0;
  res.on('data', () => events++);
  res.on('error', () => undefined);
  const state = {
    closed: new Promise<void>((resolve) => res.once('close', () => resolve())),
    complete: false,
    events: () => events,
    hangUp: () => req.destroy(),
  };
  res.once('end', () => (state.complete = res.complete));
  return state;
}
