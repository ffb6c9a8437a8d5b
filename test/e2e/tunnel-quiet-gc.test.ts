// The real tunnel client, after a download through it has gone quiet, runs one full collection (so that it
// gives back what the transfer grew: src/core/read-gc.ts), and none when nothing was transferred. Seen in
// V8's own trace: gc() calls are collections for "testing".
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { QUIET_MS } from '../../src/core/read-gc.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, startTarget, viaTunnel, type Target } from '../helpers/tunnel.js';

const FULL_GC_CALLED = /Mark-Compact.*testing/;

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
  // --expose-gc by hand: on Node 20 the client cannot relaunch itself with its memory flags.
  client = await startClient(port, 'quiet', target.port, { nodeArgs: ['--expose-gc', '--trace-gc'] });
});

after(async () => {
  await client?.stop();
  await server?.stop();
  await target?.close();
  tmp?.cleanup();
});

test('no transfer: no full collection asked for', async () => {
  const mark = client.stdout().length;
  const res = await viaTunnel(port, 'quiet', '/big?n=1000');
  for await (const _ of res);
  await sleep(QUIET_MS + 1000);
  assert.doesNotMatch(client.stdout().slice(mark), FULL_GC_CALLED);
});

test('a 24 MB download through the client, then quiet: one full collection', async () => {
  const mark = client.stdout().length;
  const res = await viaTunnel(port, 'quiet', `/big?n=${24 * 1024 * 1024}`);
  let bytes = 0;
  for await (const chunk of res) bytes += (chunk as Buffer).length;
  assert.equal(bytes, 24 * 1024 * 1024);
  await sleep(QUIET_MS + 1500);
  const lines = client
    .stdout()
    .slice(mark)
    .split('\n')
    .filter((l) => FULL_GC_CALLED.test(l));
  // Node 22+ asks for a collection that reduces memory: V8 may run it as a few in a row.
  assert.ok(lines.length >= 1, client.stdout().slice(mark).slice(-2000));
});
