// The tunnel client's extra links. A server with several worker processes holds the name in one of them; a
// visitor reaching another worker would be relayed to it over a unix socket (one more HTTP hop in both
// processes). The server says how many links it wants (`links` in `online`), and the client opens the others
// with H_LINK: join. Which worker accepts a connection is the kernel's choice, so a join that lands on a
// worker already linked is refused ('already-linked') and dialled again, a bounded number of times.
import type { WebSocket } from 'ws';

/** What a join attempt came to. */
export type JoinOutcome =
  | { kind: 'open'; ws: WebSocket }
  /** Landed on a worker that has a link already: another attempt may land elsewhere. */
  | { kind: 'again' }
  /** The server cannot take joins now (not held, refused, unreachable): stop until the next `online`. */
  | { kind: 'stop' };

/** Dials one join link; an `open` one is served by the caller (the server reports traffic on the main link). */
export type JoinDialer = () => Promise<JoinOutcome>;

/** Dials per missing link before giving up until the next `want`. */
const ATTEMPTS_PER_LINK = 16;
/** A join link that lived this long earns its replacement a fresh budget of attempts. */
const LONG_LIVED_MS = 10_000;
const REDIAL_DELAY_MS = 1_000;
/**
 * Every attempt landed on a linked worker (a worker may be starting, or being replaced): the next round of
 * attempts waits this long, doubling up to the maximum.
 */
const FIRST_PAUSE_MS = 2_000;
const MAX_PAUSE_MS = 60_000;

export class JoinLinks {
  private readonly open = new Set<WebSocket>();
  private wanted = 0;
  private attempts = 0;
  private dialing = false;
  private pauseMs = FIRST_PAUSE_MS;
  /** Bumped by `want` and `closeAll`: a dial that finishes in an older round closes what it opened. */
  private round = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dial: JoinDialer) {}

  /** The main link is online and the server wants `total` links: dial the missing joins. */
  want(total: number): void {
    this.closeAll();
    this.wanted = Math.max(0, total - 1);
    this.attempts = 0;
    this.pauseMs = FIRST_PAUSE_MS;
    this.next();
  }

  /** The main link went (or the client stops): the joins go with it. */
  closeAll(): void {
    this.round++;
    this.wanted = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const ws of this.open) ws.close(1000, 'main link closed');
    this.open.clear();
  }

  private next(): void {
    if (this.dialing || this.open.size >= this.wanted) return;
    if (this.attempts >= ATTEMPTS_PER_LINK * this.wanted) {
      this.later(this.pauseMs);
      this.pauseMs = Math.min(this.pauseMs * 2, MAX_PAUSE_MS);
      return;
    }
    this.attempts++;
    this.dialing = true;
    const round = this.round;
    void this.dial().then((outcome) => {
      this.dialing = false;
      if (round !== this.round) {
        if (outcome.kind === 'open') outcome.ws.close(1000, 'main link closed');
        this.next();
        return;
      }
      if (outcome.kind === 'stop') {
        this.wanted = 0;
        return;
      }
      if (outcome.kind === 'open') {
        this.pauseMs = FIRST_PAUSE_MS;
        this.adopt(outcome.ws);
      }
      this.next();
    });
  }

  private adopt(ws: WebSocket): void {
    this.open.add(ws);
    const round = this.round;
    const since = Date.now();
    ws.once('close', () => {
      this.open.delete(ws);
      if (round !== this.round) return;
      // Lost while the main link stays: dial again shortly (a long-lived one with a fresh budget).
      if (Date.now() - since >= LONG_LIVED_MS) this.attempts = 0;
      this.later(REDIAL_DELAY_MS, false);
    });
  }

  /** Dials again after `ms` (with a fresh budget of attempts unless told otherwise). */
  private later(ms: number, fresh = true): void {
    const round = this.round;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (round !== this.round) return;
      if (fresh) this.attempts = 0;
      this.next();
    }, ms);
    this.timer.unref();
  }
}
