// A real Runtime in this process, for tests that need a handler of their own inside the chain (a backend that
// streams, throws, or sets odd headers). Requests still go over real sockets on 127.0.0.1.
import { loadConfig, type CaddyfileInput, type LoadOptions } from '../../src/app.js';
import type { Directive } from '../../src/core/directive.js';
import { silentLogger } from '../../src/core/logger.js';
import { directives } from '../../src/middleware/index.js';
import { Runtime } from '../../src/runtime.js';

export interface InProcess {
  runtime: Runtime;
  port: number;
  /** Replaces the Caddyfile text and reloads. */
  reload(text: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `text` with the real registry plus `extra` directives (appended: innermost before the file server). */
export async function startInProcess(
  text: string,
  dir: string,
  extra: readonly Directive<unknown>[] = [],
): Promise<InProcess> {
  let current = text;
  const options: LoadOptions = {
    root: dir,
    host: '',
    port: '0',
    cwd: dir,
    env: {},
    directives: [...directives, ...extra],
  };
  const input = (): CaddyfileInput => ({ text: current, name: 'Caddyfile', baseDir: dir });
  const runtime = new Runtime({
    ...options,
    log: silentLogger(),
    graceMs: 5000,
    readInput: input,
    watch: false,
  });
  await runtime.start(loadConfig(input(), options));
  return {
    runtime,
    port: [...runtime.boundPorts().values()][0],
    async reload(next) {
      current = next;
      const r = await runtime.reload({ force: true, trigger: 'test' });
      if (!r.ok) throw r.error ?? new Error('reload failed');
    },
    stop: () => runtime.stop(2000),
  };
}

/** Loads a Caddyfile without starting it and returns the load error's message ('' if it loaded). */
export function loadError(text: string, dir: string): string {
  try {
    loadConfig(
      { text, name: 'Caddyfile', baseDir: dir },
      { root: dir, host: '', port: '0', cwd: dir, env: {}, directives },
    );
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}
