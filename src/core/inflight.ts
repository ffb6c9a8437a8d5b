// Counts requests in flight and lets a closer wait until none are left, or a grace period has passed.

export class InFlight {
  private count = 0;
  private onIdle: (() => void) | undefined;

  /** Counts a request until its response closes ('close' is emitted once per response). */
  track(res: { on(event: 'close', listener: () => void): unknown }): void {
    this.count++;
    res.on('close', this.release);
  }

  /** One function for every request: no closure or once-wrapper allocated per request. */
  private readonly release = (): void => {
    this.count--;
    if (this.count === 0) this.onIdle?.();
  };

  /** Resolves when nothing is in flight, or after graceMs, whichever comes first. */
  drained(graceMs: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, graceMs);
      timer.unref();
      const previous = this.onIdle;
      this.onIdle = done;
      function done() {
        clearTimeout(timer);
        previous?.();
        resolve();
      }
    });
  }
}
