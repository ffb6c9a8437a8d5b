// bcrypt checks off the event loop, a few at a time.
//
// A bcrypt check is meant to be slow (tens of milliseconds of CPU at cost 10). Run on the event loop, fifty
// wrong passwords at once held every other request of the process for seconds. @node-rs/bcrypt runs each
// check on a libuv thread-pool thread (native code: ~20% less CPU per check than bcryptjs here, and no
// worker threads to keep per process). That pool also does the file system work of the file server, so
// only half of it may hold checks at once; more checks wait in a bounded queue for a bounded time, and what
// does not fit is a 503 with Retry-After: under a flood of logins, logins wait or fail, not the site.
import { createRequire } from 'node:module';
import { HttpError } from '../../core/errors.js';

type Verify = (password: string, hash: string) => Promise<boolean>;

let nativeVerify: Verify | undefined;

/**
 * The native verify, loaded on the first bcrypt hash of a config (so a platform without a build of the
 * binding fails that config with a clear message, and never a server without bcrypt hashes).
 */
export function loadBcrypt(): Verify {
  if (!nativeVerify) {
    try {
      const binding = createRequire(import.meta.url)('@node-rs/bcrypt') as { verify: Verify };
      nativeVerify = binding.verify;
    } catch (err) {
      throw new Error(
        `bcrypt hashes need the @node-rs/bcrypt package, which could not be loaded on ${process.platform}-${process.arch}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return nativeVerify;
}

export interface GateLimits {
  /** Checks running at once. */
  readonly running: number;
  /** Checks waiting for a turn; one more is refused at once. */
  readonly waiting: number;
  /** How long a check may wait for its turn before it is refused. */
  readonly waitMs: number;
}

/** What a refused check answers: busy, try again shortly. */
export const RETRY_AFTER_SECONDS = 2;

/** Runs tasks at most `running` at a time, first come first served; the rest wait, within bounds. */
export class CheckGate {
  private readonly limits: GateLimits;
  private active = 0;
  private readonly queue: { start: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(limits: GateLimits) {
    this.limits = limits;
  }

  get runningCount(): number {
    return this.active;
  }

  get waitingCount(): number {
    return this.queue.length;
  }

  /** Runs `task` when a slot is free. Rejects with HttpError(503) when the queue is full or the wait too long. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limits.running) await this.turn();
    else this.active++;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  /** Waits for a slot; the slot is handed over by release() (active stays counted). */
  private turn(): Promise<void> {
    if (this.queue.length >= this.limits.waiting)
      return Promise.reject(busy('too many password checks waiting'));
    return new Promise((resolve, reject) => {
      const waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(busy('password check waited too long'));
        }, this.limits.waitMs),
      };
      this.queue.push(waiter);
    });
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next.start();
    else this.active--;
  }
}

function busy(message: string): HttpError {
  return new HttpError(503, message, { headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } });
}

/** libuv's thread pool: 4 threads unless UV_THREADPOOL_SIZE says otherwise. Half of it may hold checks. */
function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? n : 4;
}

/** One gate per process: the thread pool is per process. */
const gate = new CheckGate({
  running: Math.max(1, Math.floor(threadPoolSize() / 2)),
  waiting: 64,
  waitMs: 2000,
});

/** Verifies a password against a bcrypt hash on the thread pool, through the process's gate. */
export function verifyBcrypt(password: string, hash: string): Promise<boolean> {
  const verify = loadBcrypt();
  // A malformed hash or an odd password is a failed check, never a 500.
  return gate.run(() => verify(password, hash).catch(() => false));
}
