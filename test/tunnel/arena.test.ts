// The inspector's arena hands out views of a few chunks and reuses a chunk once all its records are freed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteArena } from '../../src/tunnel/inspector/arena.js';

test('the arena reuses its chunks once their records are freed, and never hands out live bytes', () => {
  const arena = new ByteArena();
  const memory = new Set<ArrayBufferLike>();
  const live: Buffer[] = [];
  for (let i = 0; i < 20000; i++) {
    const record = arena.alloc(100 + (i % 300));
    record.fill(i % 251);
    memory.add(record.buffer);
    live.push(record);
    // About 200 live at a time, freed oldest first (as the store lets exchanges go).
    if (live.length > 200) {
      const old = live.shift()!;
      assert.ok(
        old.every((b) => b === old[0]),
        'a live record was overwritten',
      );
      arena.free(old);
    }
  }
  // ~50 KB live at a time: a handful of 64 KB chunks, not one buffer per record.
  assert.ok(memory.size <= 4, `${memory.size} chunks`);
  const big = arena.alloc(100_000);
  assert.equal(big.length, 100_000);
  arena.free(big);
});
