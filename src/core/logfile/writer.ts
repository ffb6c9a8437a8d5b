// Line-oriented log outputs for `log` and `errors`, written asynchronously in batches.
//
// - Lines are queued in memory and written together after the current turn of the event loop (or as soon as
//   the previous write finished): one write() per batch, never one per request, never synchronous.
// - Files are opened with O_APPEND and every write() carries whole lines only, so several processes (cluster
//   workers) appending to one file never interleave parts of lines.
// - One LogFile per absolute path per process, shared by every site, directive and config generation that
//   names it, with a reference count: on reload the new config acquires it before the old one releases it, so
//   a file used by both keeps its descriptor and nothing queued is lost. The last release flushes and closes.
// - Rolling (see rotate.ts) is checked before each batch: one stat() of the path tells both the size and
//   whether another process has rotated the file away (then we reopen).
import { promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { LogTarget, RollOptions } from './options.js';
import { maintainBackups, rotateIfStill } from './rotate.js';

/** A place to send log lines (without the trailing newline). */
export interface LineSink {
  write(line: string): void;
}

/** A sink a directive holds between start() and close(). */
export interface LogOutput extends LineSink {
  release(): Promise<void>;
}

const BATCH_BYTES = 256 * 1024;
/** Delay before compressing a fresh backup, so that other processes' last batch into it has landed. */
const COMPRESS_DELAY_MS = 1000;

/** Queues lines and hands them to `writeBatch` one batch at a time. */
abstract class BatchingSink implements LineSink {
  private queue: string[] = [];
  private scheduled = false;
  private running: Promise<void> | undefined;

  write(line: string): void {
    this.queue.push(line);
    if (!this.scheduled && !this.running) {
      this.scheduled = true;
      setImmediate(() => this.kick());
    }
  }

  private kick(): void {
    this.scheduled = false;
    if (!this.running && this.queue.length > 0) this.running = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        let size = 0;
        let n = 0;
        while (n < this.queue.length && size < BATCH_BYTES) size += this.queue[n++].length + 1;
        const batch = this.queue.length === n ? this.queue : this.queue.slice(0, n);
        this.queue = this.queue.length === n ? [] : this.queue.slice(n);
        const text = batch.join('\n') + '\n';
        try {
          await this.writeBatch(Buffer.from(text, 'utf8'));
        } catch (err) {
          process.emitWarning(`log output ${this.describe()}: ${(err as Error).message}; ${n} lines lost`);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Resolves when everything queued so far has been written. */
  async flush(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.kick();
      await this.running;
    }
  }

  protected abstract writeBatch(data: Buffer): Promise<void>;
  protected abstract describe(): string;
}

class StdSink extends BatchingSink {
  constructor(private readonly stream: NodeJS.WriteStream) {
    super();
  }
  protected writeBatch(data: Buffer): Promise<void> {
    // Node writes files and pipes on stdout/stderr synchronously on Linux; batching keeps that to one call
    // per batch. Waiting for the callback keeps a slow reader from making us queue without bound.
    return new Promise((resolve, reject) =>
      this.stream.write(data, (err) => (err ? reject(err) : resolve())),
    );
  }
  protected describe(): string {
    return this.stream === process.stdout ? 'stdout' : 'stderr';
  }
}

export class LogFile extends BatchingSink {
  readonly file: string;
  roll: RollOptions;
  refs = 0;
  /** Settles when the first open() has; acquirers wait for it. */
  ready: Promise<void> = Promise.resolve();
  private handle: FileHandle | undefined;
  private stat: Stats | undefined;
  private maintenance: Promise<void> = Promise.resolve();
  private compressTimer: NodeJS.Timeout | undefined;

  constructor(file: string, roll: RollOptions) {
    super();
    this.file = file;
    this.roll = roll;
  }

  async open(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const handle = await fs.open(this.file, 'a', 0o644);
    const previous = this.handle;
    this.handle = handle;
    this.stat = await handle.stat();
    await previous?.close().catch(() => undefined);
  }

  protected async writeBatch(data: Buffer): Promise<void> {
    if (!this.handle) await this.open();
    if (!this.roll.disabled) await this.checkRoll(data.length);
    const handle = this.handle!;
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await handle.write(data, off, data.length - off);
      off += bytesWritten;
    }
  }

  private async checkRoll(incoming: number): Promise<void> {
    const maxBytes = (this.roll.maxSizeMB > 0 ? this.roll.maxSizeMB : 100) * 1024 * 1024;
    let current: Stats | undefined;
    try {
      current = await fs.stat(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const mine = this.stat!;
    if (!current || current.ino !== mine.ino || current.dev !== mine.dev) {
      // Another process rotated it (or someone moved/removed it): follow the path.
      await this.open();
      current = this.stat!;
    }
    if (current.size === 0 || current.size + incoming <= maxBytes) return;
    await rotateIfStill(this.file, mine.dev, mine.ino);
    await this.open();
    this.scheduleMaintenance();
  }

  private scheduleMaintenance(): void {
    clearTimeout(this.compressTimer);
    this.compressTimer = setTimeout(() => this.runMaintenance(), COMPRESS_DELAY_MS);
    this.compressTimer.unref();
  }

  private runMaintenance(): void {
    this.compressTimer = undefined;
    const roll = { ...this.roll };
    this.maintenance = this.maintenance.then(() => maintainBackups(this.file, roll)).catch(() => undefined);
  }

  protected describe(): string {
    return this.file;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.compressTimer) {
      clearTimeout(this.compressTimer);
      this.runMaintenance();
    }
    await this.maintenance;
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}

const files = new Map<string, LogFile>();
const stdout = new StdSink(process.stdout);
const stderr = new StdSink(process.stderr);

/**
 * Opens (or shares) the output. For files, the roll options of the latest acquirer apply, so a reload that
 * changes rotate_* takes effect. Call release() in close().
 */
export async function acquireLogOutput(target: LogTarget, roll: RollOptions): Promise<LogOutput> {
  if (target.kind !== 'file') {
    const sink = target.kind === 'stdout' ? stdout : stderr;
    return { write: (line) => sink.write(line), release: () => sink.flush() };
  }
  let lf = files.get(target.path);
  if (!lf) {
    const created = new LogFile(target.path, roll);
    lf = created;
    files.set(target.path, created);
    created.ready = created.open().catch((err: unknown) => {
      if (files.get(target.path) === created) files.delete(target.path);
      throw err;
    });
  } else lf.roll = roll;
  await lf.ready;
  lf.refs++;
  const shared = lf;
  let released = false;
  return {
    write: (line) => {
      // A line from a request that outlived its config (past -grace) still goes out if the file is open.
      if (shared.refs > 0) shared.write(line);
    },
    async release() {
      if (released) return;
      released = true;
      if (--shared.refs > 0) return;
      if (files.get(shared.file) === shared) files.delete(shared.file);
      await shared.close();
    },
  };
}
