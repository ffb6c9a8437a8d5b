// The mux's stream table against a Map as the model: ids as the two sides make them, long-lived streams among
// short ones (probe runs that wrap around the table's end, deletions that shift entries back), growth, clear.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamTable } from '../../src/tunnel/mux-table.js';

/** A small deterministic generator, so that a failure repeats. */
function numbers(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

function same(table: StreamTable<string>, model: Map<number, string>, ids: number[]): void {
  assert.equal(table.size, model.size);
  for (const id of ids) assert.equal(table.get(id), model.get(id), `stream ${id}`);
  assert.deepEqual(table.list().sort(), [...model.values()].sort());
}

test('the stream table finds, replaces and forgets streams as a Map does', () => {
  const random = numbers(7);
  const table = new StreamTable<string>();
  const model = new Map<number, string>();
  const seen: number[] = [];
  let odd = 1;
  let even = 2;
  for (let step = 0; step < 20000; step++) {
    const r = random();
    if (r < 0.5 || model.size === 0) {
      // New streams from either side; now and then far ahead, as after a long-lived stream.
      const id = random() < 0.5 ? (odd += 2) : (even += random() < 0.01 ? 2 * 1024 : 2);
      table.set(id, `s${id}`);
      model.set(id, `s${id}`);
      seen.push(id);
    } else if (r < 0.95) {
      // Mostly the newer ones go, some stay long.
      const keys = [...model.keys()];
      const id = keys[Math.floor(keys.length * (0.2 + 0.8 * random())) % keys.length];
      table.delete(id);
      model.delete(id);
    } else {
      const id = seen[Math.floor(random() * seen.length)];
      table.delete(id); // gone already, or not: both fine
      model.delete(id);
    }
    if (step % 500 === 0) same(table, model, seen.slice(-300));
  }
  same(table, model, seen);
  // Hundreds at once make it grow.
  for (let i = 0; i < 300; i++) {
    table.set((odd += 2), 'g');
    model.set(odd, 'g');
  }
  same(table, model, seen.concat([...model.keys()]));
  table.set(odd, 'replaced');
  assert.equal(table.get(odd), 'replaced');
  assert.equal(table.size, model.size);
  table.clear();
  assert.equal(table.size, 0);
  assert.equal(table.get(odd), undefined);
  assert.deepEqual(table.list(), []);
});

test('ids that share a home slot, wrapping past the end, survive each other going', () => {
  const table = new StreamTable<number>();
  // 64 slots at first: ids 2k*64 apart (after the >>> 1) share one home; 63 and 127 home at the end.
  const ids = [126, 254, 382, 510, 128 * 64 + 126];
  for (const id of ids) table.set(id, id);
  for (const id of ids) assert.equal(table.get(id), id);
  table.delete(254);
  table.delete(126);
  assert.equal(table.get(126), undefined);
  for (const id of [382, 510, 128 * 64 + 126])
    assert.equal(table.get(id), id, `stream ${id} after deletions`);
  assert.equal(table.size, 3);
});
