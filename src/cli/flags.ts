// Go `flag` package semantics, because Caddy users type `-conf file`, `-port=8080`, `-quiet`.
// `-x` and `--x` are the same; `-x=v` or `-x v` for values; booleans only as `-x` or `-x=false`;
// parsing stops at the first non-flag argument or `--`.
import { parseDuration } from '../core/duration.js';

export type FlagType = 'string' | 'bool';

export interface FlagSpec {
  name: string;
  type: FlagType;
  default: string;
  usage: string;
}

export class FlagError extends Error {
  /** True for -h/-help: print usage and exit 0. */
  readonly help: boolean;
  constructor(message: string, help = false) {
    super(message);
    this.help = help;
  }
}

export interface ParsedFlags {
  values: Map<string, string>;
  /** Flags the user actually set (to tell "left at default" from "set to the default value"). */
  set: Set<string>;
  /** Every value given, in order, for flags that may be repeated (`-to a -to b`); `values` holds the last. */
  all: Map<string, string[]>;
  positional: string[];
}

export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map(specs.map((s) => [s.name, s.default]));
  const set = new Set<string>();
  const all = new Map<string, string[]>();
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') break;
    let body = arg.slice(arg[1] === '-' ? 2 : 1);
    if (!body || body.startsWith('-') || body.startsWith('=')) throw new FlagError(`bad flag syntax: ${arg}`);
    let value: string | undefined;
    const eq = body.indexOf('=');
    if (eq >= 0) {
      value = body.slice(eq + 1);
      body = body.slice(0, eq);
    }
    if (body === 'h' || body === 'help') throw new FlagError('help requested', true);
    const spec = byName.get(body);
    if (!spec) throw new FlagError(`flag provided but not defined: -${body}`);
    if (spec.type === 'bool') {
      if (value === undefined) value = 'true';
      const b = parseBool(value);
      if (b === undefined) throw new FlagError(`invalid boolean value "${value}" for -${body}`);
      value = String(b);
    } else if (value === undefined) {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${body}`);
      value = argv[++i]!;
    }
    values.set(body, value);
    set.add(body);
    let given = all.get(body);
    if (!given) all.set(body, (given = []));
    given.push(value);
  }
  return { values, set, all, positional: argv.slice(i) };
}

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

/** Usage text in the style of Go's PrintDefaults. */
export function formatUsage(specs: readonly FlagSpec[]): string {
  const lines = specs.map((s) => {
    const head = s.type === 'bool' ? `  -${s.name}` : `  -${s.name} ${s.type}`;
    const def =
      s.default && s.type !== 'bool'
        ? ` (default ${JSON.stringify(s.default)})`
        : s.default === 'true'
          ? ' (default true)'
          : '';
    return `${head}\n    \t${s.usage}${def}`;
  });
  return lines.join('\n');
}

/** A duration flag's value in ms (Go syntax, not negative); throws with the message a usage error shows. */
export function durationFlag(flag: string, value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    throw new Error(`invalid value "${value}" for flag -${flag}: ${(err as Error).message}`, { cause: err });
  }
  if (ms < 0) throw new Error(`invalid value "${value}" for flag -${flag}: negative duration`);
  return ms;
}
