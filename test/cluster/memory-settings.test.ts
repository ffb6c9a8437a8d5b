// The node flags workers (and the tunnel client) get unless the user gave their own: which count as given.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { missingMemoryFlags } from '../../src/cluster/memory-settings.js';

const BIG_HEAP = 4096 * 1024 * 1024;

test('without flags of their own, workers get the young generation cap, synchronous array buffer sweeping, gc and the old-space limit', () => {
  assert.deepEqual(missingMemoryFlags([], '', BIG_HEAP), [
    '--max-semi-space-size=4',
    '--no-concurrent-array-buffer-sweeping',
    '--expose-gc',
    '--max-old-space-size=2047',
  ]);
});

test("a flag the user gave, in any spelling (negated, underscores, with a value), is the user's", () => {
  assert.deepEqual(missingMemoryFlags(['--concurrent_array_buffer_sweeping'], '', BIG_HEAP), [
    '--max-semi-space-size=4',
    '--expose-gc',
    '--max-old-space-size=2047',
  ]);
  assert.deepEqual(
    missingMemoryFlags(
      ['--no-concurrent-array-buffer-sweeping', '--max_semi_space_size=16', '--no-expose_gc'],
      '',
      BIG_HEAP,
    ),
    ['--max-old-space-size=2047'],
  );
  assert.deepEqual(missingMemoryFlags([], '--max-old-space-size=3000 --expose-gc', BIG_HEAP), [
    '--max-semi-space-size=4',
    '--no-concurrent-array-buffer-sweeping',
  ]);
});

test('below a 2 GB heap limit the old-space flag is left out', () => {
  assert.deepEqual(missingMemoryFlags([], '', 1024 * 1024 * 1024), [
    '--max-semi-space-size=4',
    '--no-concurrent-array-buffer-sweeping',
    '--expose-gc',
  ]);
});
