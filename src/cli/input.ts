// Where the Caddyfile comes from, in Caddy v1's loader order: -conf, positional args, ./Caddyfile, default.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultCaddyfile, type CaddyfileInput } from '../app.js';

export interface InputFlags {
  conf: string;
  host: string;
  port: string;
  root: string;
  positional: readonly string[];
  cwd: string;
  /** Reads all of standard input (only called for `-conf stdin`). */
  readStdin: () => string;
}

export const PIPE_HINT = 'pipe a Caddyfile in: cat Caddyfile | nodecaddy -conf stdin';

/** Returns a loader: call it for the input at startup and again on every reload. */
export function inputLoader(flags: InputFlags): () => CaddyfileInput {
  const { conf, positional, cwd } = flags;
  if (conf && positional.length > 0) {
    throw new Error('Caddyfile loaded multiple times; first by flag, then by short');
  }
  if (conf === 'stdin') {
    // A pipe can be read once; reloads reuse what it gave. Nothing at all is a mistake, not the default site.
    const text = flags.readStdin();
    if (text.trim() === '') throw new Error(`-conf stdin: standard input is empty; ${PIPE_HINT}`);
    const input: CaddyfileInput = { text, name: 'stdin', baseDir: cwd };
    return () => input;
  }
  if (conf.includes('*')) {
    return () => ({ text: `import ${conf}`, name: conf, baseDir: cwd });
  }
  if (conf) {
    const file = path.resolve(cwd, conf);
    return () => ({ text: readConf(file, conf), name: conf, path: file });
  }
  if (positional.length > 0) {
    const input: CaddyfileInput = {
      text: `${flags.host}:${flags.port}\n${positional.join('\n')}`,
      name: 'args',
      baseDir: cwd,
    };
    return () => input;
  }
  const file = path.join(cwd, 'Caddyfile');
  return () => {
    if (existsSync(file)) return { text: readConf(file, 'Caddyfile'), name: 'Caddyfile', path: file };
    return { text: defaultCaddyfile(flags), name: 'default', baseDir: cwd, path: file };
  };
}

function readConf(file: string, shown: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file or directory'
        : code === 'EISDIR'
          ? 'is a directory'
          : (err as Error).message;
    throw new Error(`open ${shown}: ${why}`, { cause: err });
  }
}
