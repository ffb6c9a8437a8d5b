// Drops what a pool keeps for reuse (compressors, buffers) once the pool has gone unused for a while, so an
// idle server gives that memory back. The check runs on an unref'd timer, armed only while something is kept.
export class IdleTrim {
  private readonly idleMs: number;
  private readonly drop: () => void;
  private lastUse = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `drop` empties the pool; it is called once the pool has not been used for `idleMs`. */
  constructor(idleMs: number, drop: () => void) {
    this.idleMs = idleMs;
    this.drop = drop;
  }

  /** Something was taken from the pool. */
  used(): void {
    this.lastUse = Date.now();
  }

  /** Something is kept in the pool: the check must run. */
  arm(): void {
    if (!this.timer) this.schedule(this.idleMs);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  /** Drops once a whole idle period has passed since the last use, else looks again when it will have. */
  private check(): void {
    const idleFor = Date.now() - this.lastUse;
    if (idleFor < this.idleMs) return this.schedule(this.idleMs - idleFor);
    this.timer = undefined;
    this.drop();
  }
}
