// The minor collection after every READ_GC_BYTES of socket reads consumed (src/core/read-gc.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { READ_GC_BYTES, countRead } from '../../src/core/read-gc.js';
import { withCountingGc, type Gc } from '../helpers/gc.js';

test('one minor collection per READ_GC_BYTES read, however the reads come', () =>
  withCountingGc((calls) => {
    // Whatever an earlier caller left counted is used up first.
    countRead(READ_GC_BYTES);
    calls.length = 0;
    countRead(READ_GC_BYTES - 1);
    assert.equal(calls.length, 0, 'not before READ_GC_BYTES');
    countRead(1);
    assert.deepEqual(calls, [{ type: 'minor' }]);
    for (let i = 0; i < (3 * READ_GC_BYTES) / 65536; i++) countRead(65536);
    assert.equal(calls.length, 4, 'three more in 64 KB reads');
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
