// The tunnel client's request lines (stdout not a terminal) are written once per turn of the event loop, in
// order, and whatever waits is written by flush (at exit).
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { test } from 'node:test';
import { batched, plainOutput } from '../../src/tunnel/console/lines.js';

test('lines of one turn go out in one write, in order; flush writes what waits', async () => {
  const writes: string[] = [];
  const lines = batched((text) => writes.push(text));
  const out = plainOutput(lines.write, false);
  out.info('Forwarding http://a.example -> http://localhost:3000');
  for (let i = 0; i < 3; i++) out.exchange({ method: 'GET', path: `/${i}`, status: 200, durationMs: 1 });
  assert.deepEqual(writes, []);
  await turn();
  assert.deepEqual(writes, [
    'Forwarding http://a.example -> http://localhost:3000\nGET /0 200 1ms\nGET /1 200 1ms\nGET /2 200 1ms\n',
  ]);
  out.exchange({ method: 'POST', path: '/x', status: 502, error: 'connection refused', durationMs: 2 });
  lines.flush();
  assert.equal(writes[1], 'POST /x 502 (connection refused) 2ms\n');
  await turn();
  assert.equal(writes.length, 2);
});
