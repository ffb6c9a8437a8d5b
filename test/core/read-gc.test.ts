// Collections paced by socket reads (src/core/read-gc.ts): a minor one per READ_GC_BYTES read, a full one
// once the traffic has stopped for a while after a transfer (read or sent).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { READ_GC_BYTES, ReadCollector, countRead } from '../../src/core/read-gc.js';
import { withCountingGc, type Gc } from '../helpers/gc.js';

const minor = { type: 'minor' };
const isMinor = (c: unknown) => (c as { type?: string } | undefined)?.type === 'minor';
/** The full collections: gc() on Node 20, gc({ type: 'major', ... }) from Node 22. */
const fulls = (calls: unknown[]) => calls.filter((c) => !isMinor(c));

test('one minor collection per READ_GC_BYTES read, however the reads come', () =>
  withCountingGc((calls) => {
    const reads = new ReadCollector(READ_GC_BYTES, 60_000);
    reads.read(READ_GC_BYTES - 1);
    assert.equal(calls.length, 0, 'not before READ_GC_BYTES');
    reads.read(1);
    assert.deepEqual(calls, [minor]);
    for (let i = 0; i < (3 * READ_GC_BYTES) / 65536; i++) reads.read(65536);
    assert.deepEqual(calls, [minor, minor, minor, minor], 'three more in 64 KB reads');
  }));

test('reads that stop after a transfer bring one full collection once quiet, reads that go on none', () =>
  withCountingGc(async (calls) => {
    const reads = new ReadCollector(1000, 150);
    reads.read(999);
    await sleep(300);
    assert.deepEqual(
      calls,
      [],
      'no transfer (less than the bytes of a minor collection): nothing when quiet',
    );
    reads.read(1);
    // Reads go on, a minor collection every 50 ms: never quiet for 150 ms.
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      reads.read(1000);
    }
    assert.equal(fulls(calls).length, 0, 'not while reading');
    await sleep(400);
    assert.ok(!isMinor(calls.at(-1)));
    assert.equal(fulls(calls).length, 1, 'one only');
  }));

test('bytes sent bring no minor collection, but the full one once quiet after a transfer', () =>
  withCountingGc(async (calls) => {
    const reads = new ReadCollector(1000, 150);
    reads.sent(999);
    await sleep(300);
    assert.deepEqual(calls, [], 'no transfer yet');
    reads.sent(5000);
    assert.deepEqual(calls, [], 'no minor collection for sent bytes');
    await sleep(400);
    assert.equal(calls.length, 1);
    assert.equal(fulls(calls).length, 1);
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
