// Collections paced by socket reads (src/core/read-gc.ts): a minor one per READ_GC_BYTES consumed, a full one
// once the reads have stopped for a while after that.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { READ_GC_BYTES, ReadCollector, countRead } from '../../src/core/read-gc.js';
import { withCountingGc, type Gc } from '../helpers/gc.js';

const minor = { type: 'minor' };
const major = { type: 'major' };

test('one minor collection per READ_GC_BYTES read, however the reads come', () =>
  withCountingGc((calls) => {
    const reads = new ReadCollector(READ_GC_BYTES, 60_000);
    reads.count(READ_GC_BYTES - 1);
    assert.equal(calls.length, 0, 'not before READ_GC_BYTES');
    reads.count(1);
    assert.deepEqual(calls, [minor]);
    for (let i = 0; i < (3 * READ_GC_BYTES) / 65536; i++) reads.count(65536);
    assert.deepEqual(calls, [minor, minor, minor, minor], 'three more in 64 KB reads');
  }));

test('reads that stop after a minor collection bring one full collection once quiet, reads that go on none', () =>
  withCountingGc(async (calls) => {
    const reads = new ReadCollector(1000, 150);
    reads.count(999);
    await sleep(300);
    assert.deepEqual(calls, [], 'no transfer (no minor collection): nothing when quiet');
    reads.count(1);
    // Reads go on, a minor collection every 50 ms: never quiet for 150 ms.
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      reads.count(1000);
    }
    assert.ok(!calls.some((c) => (c as { type: string }).type === 'major'), 'not while reading');
    await sleep(400);
    assert.deepEqual(calls.at(-1), major);
    assert.equal(calls.filter((c) => (c as { type: string }).type === 'major').length, 1, 'one only');
  }));

test('without gc (node not started with --expose-gc) counting does nothing else', () => {
  const g = globalThis as Gc;
  const own = g.gc;
  delete g.gc;
  try {
    assert.doesNotThrow(() => countRead(3 * READ_GC_BYTES));
  } finally {
    if (own) g.gc = own;
  }
});
