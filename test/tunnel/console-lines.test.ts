// The tunnel client's request lines (stdout not a terminal) are gathered for a moment and written together,
// in order, and whatever waits is written by flush (at exit).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batched, plainOutput } from '../../src/tunnel/console/lines.js';

test('lines of a moment go out in one write, in order; flush writes what waits', async () => {
  const writes: string[] = [];
  let wrote = () => undefined as void;
  const lines = batched((text) => {
    writes.push(text);
    wrote();
  }, 20);
  const out = plainOutput(lines.write, false);
  out.info('Forwarding http://a.example -> http://localhost:3000');
  for (let i = 0; i < 3; i++) out.exchange({ method: 'GET', path: `/${i}`, status: 200, durationMs: 1 });
  assert.deepEqual(writes, []);
  await new Promise<void>((resolve) => (wrote = resolve));
  assert.deepEqual(writes, [
    'Forwarding http://a.example -> http://localhost:3000\nGET /0 200 1ms\nGET /1 200 1ms\nGET /2 200 1ms\n',
  ]);
  out.exchange({ method: 'POST', path: '/x', status: 502, error: 'connection refused', durationMs: 2 });
  assert.equal(writes.length, 1);
  lines.flush();
  assert.equal(writes[1], 'POST /x 502 (connection refused) 2ms\n');
  lines.flush();
  assert.equal(writes.length, 2);
});
