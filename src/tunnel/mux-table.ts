// The streams of a link by id, in an open-addressing table of our own instead of a Map. Why: a Map that
// lives as long as the link and churns thousands of entries a second replaces its hash table every few dozen
// insertions, and V8 leaves in each replaced table its entries and a link to its successor (for iterators
// that were walking it). As soon as one full collection has moved the table to the old generation, every
// successor is allocated there too, and each replaced table stays reachable for scavenges (old-to-new
// pointers count as roots) until the next full collection: every stream it held, with the whole request
// behind it, survives and is promoted, ~3 KB per request at ~10k requests a second. That fills the old
// generation, whose next full collection promotes the live table again: the cycle went on for as long as the
// load did. Here a removed stream's slot is cleared at once and a grown table's old arrays are emptied, so
// nothing dead keeps a stream alive.

/** Slots before the first growth; a power of two. */
const INITIAL_CAPACITY = 64;

export class StreamTable<T> {
  private ids: Float64Array;
  private values: (T | undefined)[];
  private mask: number;
  private count = 0;

  constructor() {
    this.ids = new Float64Array(INITIAL_CAPACITY);
    this.values = new Array<T | undefined>(INITIAL_CAPACITY).fill(undefined);
    this.mask = INITIAL_CAPACITY - 1;
  }

  get size(): number {
    return this.count;
  }

  get(id: number): T | undefined {
    for (let i = this.slotOf(id); ; i = (i + 1) & this.mask) {
      const value = this.values[i];
      if (value === undefined || this.ids[i] === id) return value;
    }
  }

  set(id: number, value: T): void {
    let i = this.slotOf(id);
    while (this.values[i] !== undefined && this.ids[i] !== id) i = (i + 1) & this.mask;
    if (this.values[i] === undefined) this.count++;
    this.ids[i] = id;
    this.values[i] = value;
    // At most half full, so that probe runs stay short.
    if (this.count * 2 > this.mask + 1) this.grow();
  }

  delete(id: number): void {
    let i = this.slotOf(id);
    while (this.ids[i] !== id || this.values[i] === undefined) {
      if (this.values[i] === undefined) return;
      i = (i + 1) & this.mask;
    }
    this.values[i] = undefined;
    this.count--;
    // Backward-shift deletion: entries of the probe run after the hole move up if their home allows, so that
    // lookups can stop at the first empty slot (no tombstones).
    for (let hole = i, j = (i + 1) & this.mask; this.values[j] !== undefined; j = (j + 1) & this.mask) {
      const home = this.slotOf(this.ids[j]);
      // j's entry may fill the hole unless its home lies cyclically in (hole, j].
      const homeAfterHole = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (homeAfterHole) continue;
      this.ids[hole] = this.ids[j];
      this.values[hole] = this.values[j];
      this.values[j] = undefined;
      hole = j;
    }
  }

  /** Every value, in no particular order. */
  list(): T[] {
    return this.values.filter((v): v is T => v !== undefined);
  }

  clear(): void {
    this.values.fill(undefined);
    this.count = 0;
  }

  private slotOf(id: number): number {
    // Ids are sequential (odd from one side, even from the other): the low bits spread them; the shift
    // keeps the two sides' ids from doubling up on every other slot.
    return ((id >>> 1) ^ (id >>> 17)) & this.mask;
  }

  private grow(): void {
    const ids = this.ids;
    const values = this.values;
    const capacity = (this.mask + 1) * 2;
    this.ids = new Float64Array(capacity);
    this.values = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    this.count = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value !== undefined) this.set(ids[i], value);
    }
    // The old array may be in the old generation: emptied, it keeps no stream alive until it is collected.
    values.fill(undefined);
  }
}
