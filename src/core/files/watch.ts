// Directory watchers that tell a file cache which names changed. inotify queues an event before the
// write() that caused it returns, and libuv reads it no later than the socket data of a request sent after
// that write: so a change is known before the next request is handled, and a changed file is served new at once.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { isSameOrBelow } from './paths.js';

export interface ChangeSink {
  /** `changed` is the absolute path of the entry that changed, or undefined for "anything may have". */
  changed(changed: string | undefined, renamed: boolean): void;
}

/** Which names of a watched directory matter: undefined means every name. */
interface NameFilter {
  names: Set<string> | undefined;
}

export class DirWatchers {
  private readonly watchers = new Map<string, { readonly watcher: FSWatcher; readonly filter: NameFilter }>();

  constructor(
    private readonly sink: ChangeSink,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.watchers.size;
  }

  /**
   * Watches `dir` (once), for every name in it or, with `onlyName`, for the names asked for only (the parent
   * of a root or of a symlink's target, whose other entries concern no cached path). Returns 'ok', 'missing'
   * (the directory does not exist: the caller relies on its parent's watcher) or 'failed' (limit reached,
   * permission, inotify exhausted: do not cache below it). fs.watch is a single inotify_add_watch, done
   * once per directory, never per request.
   */
  add(dir: string, onlyName?: string): 'ok' | 'missing' | 'failed' {
    const known = this.watchers.get(dir);
    if (known) {
      const { filter } = known;
      if (filter.names !== undefined) {
        if (onlyName === undefined) filter.names = undefined;
        else filter.names.add(onlyName);
      }
      return 'ok';
    }
    if (this.watchers.size >= this.max) return 'failed';
    const filter: NameFilter = { names: onlyName === undefined ? undefined : new Set([onlyName]) };
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: false }, (event, filename) => {
        const name = filename === null ? undefined : String(filename);
        if (filter.names !== undefined && name !== undefined && !filter.names.has(name)) return;
        this.sink.changed(name === undefined ? undefined : path.join(dir, name), event === 'rename');
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'failed';
    }
    // A watcher that breaks (directory gone, fd trouble) can no longer vouch for anything.
    w.on('error', () => {
      this.drop(dir);
      this.sink.changed(undefined, true);
    });
    this.watchers.set(dir, { watcher: w, filter });
    return 'ok';
  }

  /** Closes the watchers of `changed` and everything below it (they may watch a directory that is gone). */
  dropBelow(changed: string): void {
    for (const dir of this.watchers.keys()) if (isSameOrBelow(changed, dir)) this.drop(dir);
  }

  drop(dir: string): void {
    const w = this.watchers.get(dir);
    if (!w) return;
    this.watchers.delete(dir);
    w.watcher.close();
  }

  closeAll(): void {
    for (const dir of [...this.watchers.keys()]) this.drop(dir);
  }
}
