// Watches config files for changes. Directories are watched (depth 0), not the files, so that editors which
// replace a file (write-and-rename, delete-and-recreate) are still seen; events are debounced.
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export class FileWatcher {
  private watcher: FSWatcher | undefined;
  private files = new Set<string>();
  private dirs = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readyPromise: Promise<void> = Promise.resolve();
  /** When true, a change to any file in a watched directory counts (used after a failed load). */
  watchWholeDirs = false;

  constructor(
    private readonly onChange: () => void,
    private readonly debounceMs = 150,
  ) {}

  /** Sets the files to watch; (un)watches their directories as needed. */
  setFiles(files: readonly string[]): void {
    this.files = new Set(files.map((f) => path.resolve(f)));
    const dirs = new Set([...this.files].map((f) => path.dirname(f)));
    if (!this.watcher) {
      const watcher = watch([...dirs], { depth: 0, ignoreInitial: true, atomic: true });
      this.watcher = watcher;
      this.readyPromise = new Promise((resolve) => watcher.once('ready', () => resolve()));
      this.watcher.on('all', (_event, file) => this.onEvent(file));
      this.watcher.on('error', () => {
        /* a vanished directory is not fatal; the next setFiles() re-adds it */
      });
    } else {
      const gone = [...this.dirs].filter((d) => !dirs.has(d));
      const added = [...dirs].filter((d) => !this.dirs.has(d));
      if (gone.length) this.watcher.unwatch(gone);
      if (added.length) this.watcher.add(added);
    }
    this.dirs = dirs;
  }

  /** Resolves once the initial scan is done, so changes made after it are reported. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  private onEvent(file: string): void {
    const abs = path.resolve(file);
    if (!this.files.has(abs) && !(this.watchWholeDirs && this.dirs.has(path.dirname(abs)))) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onChange, this.debounceMs);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
