// Caddyfile <-> JSON, as Caddy v1's caddyfile/json.go (the -caddyfile-to-json / -json-to-caddyfile flags).
import { Dispenser } from './dispenser.js';
import { compareCodePoints } from './glob.js';
import { parse, type ParseOptions } from './parser.js';

/** A body line: directive name, then string arguments; a `{ … }` becomes a nested array of lines. */
type Line = (string | Line[])[];

function constructLine(d: Dispenser): Line {
  const args: Line = [d.val()];
  while (d.nextArg()) {
    if (d.val() === '{') {
      args.push(constructBlock(d));
      continue;
    }
    args.push(d.val());
  }
  return args;
}

function constructBlock(d: Dispenser): Line[] {
  const block: Line[] = [];
  while (d.next()) {
    if (d.val() === '}') break;
    block.push(constructLine(d));
  }
  return block;
}

/** Go's encoding/json string encoding (HTML-safe: `<`, `>`, `&` as \u003c \u003e \u0026). */
function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || ch === '<' || ch === '>' || ch === '&' || cp === 0x2028 || cp === 0x2029) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else if (cp >= 0xd800 && cp <= 0xdfff)
      out += '\\ufffd'; // a lone surrogate is not valid UTF-8
    else out += ch;
  }
  return `${out}"`;
}

/** Compact JSON like Go's json.Marshal, for the values this module produces. */
function marshal(v: unknown): string {
  if (typeof v === 'string') return goString(v);
  if (Array.isArray(v)) return `[${v.map(marshal).join(',')}]`;
  if (v === null || v === undefined) return 'null';
  const obj = v as Record<string, unknown>;
  return `{${Object.keys(obj)
    .map((k) => `${goString(k)}:${marshal(obj[k])}`)
    .join(',')}}`;
}

/**
 * Parses a Caddyfile (any directive name accepted) into `[{"keys":[…],"body":[[…],…]},…]`. Body lines are grouped
 * by directive name in sorted order, keeping file order within a name. No blocks gives `[]`.
 */
export function caddyfileToJson(text: string, file?: string, options: ParseOptions = {}): string {
  const name = file || 'Caddyfile';
  const { blocks } = parse(text, name, { ...options, directives: undefined });
  // An array whatever the input, so that a consumer can always iterate (Go's nil slice would print null).
  if (blocks.length === 0) return '[]';
  const out = blocks.map((b) => {
    const body: Line[] = [];
    for (const dir of [...b.tokens.keys()].sort(compareCodePoints)) {
      const d = new Dispenser(b.tokens.get(dir) ?? [], name);
      while (d.next()) body.push(constructLine(d));
    }
    return { keys: b.keys, body };
  });
  return marshal(out);
}

/** Go's fmt %v of a float64: shortest digits, exponent form below 1e-4 and from 1e6 (`1e+06`). */
export function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const sign = v < 0 ? '-' : '';
  const [mant = '', expText = '0'] = Math.abs(v).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${int}${frac ? `.${frac}` : ''}`;
}

function tabs(n: number): string {
  return '\t'.repeat(Math.max(n, 0));
}

/** json.go's jsonToText for one value inside a line (a nested array there is a block). */
function valueText(v: unknown, depth: number): string {
  if (typeof v === 'string') return /[" \n\t\r]/.test(v) ? `"${v.replaceAll('"', '\\"')}"` : v;
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return lineText(v, depth);
  return ''; // null and objects print nothing, as in Go
}

function lineText(line: readonly unknown[], depth: number): string {
  let result = '';
  line.forEach((v, i) => {
    if (Array.isArray(v)) {
      // QUIRK (json.go): no space is added after a block that is not the last element.
      result += '{\n';
      for (const arg of v) result += `${tabs(depth)}${valueText(arg, depth + 1)}\n`;
      result += `${tabs(depth - 1)}}`;
      return;
    }
    result += valueText(v, depth);
    if (i < line.length - 1) result += ' ';
  });
  return result;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

interface Encoded {
  keys: string[];
  body: unknown[][];
}

/** Go's json.Unmarshal into []struct{Keys []string; Body [][]interface{}} (field names match case-insensitively). */
function decode(data: unknown): Encoded[] {
  if (data === null) return [];
  if (!Array.isArray(data))
    throw new Error(`JSON Caddyfile must be an array of server blocks, not ${describe(data)}`);
  return data.map((sb: unknown, i): Encoded => {
    const block: Encoded = { keys: [], body: [] };
    if (sb === null) return block;
    if (typeof sb !== 'object' || Array.isArray(sb)) {
      throw new Error(`JSON Caddyfile: server block ${i} must be an object, not ${describe(sb)}`);
    }
    for (const [field, value] of Object.entries(sb as Record<string, unknown>)) {
      const f = field.toLowerCase();
      if (f === 'keys') {
        if (value !== null && !Array.isArray(value)) {
          throw new Error(
            `JSON Caddyfile: "keys" of server block ${i} must be an array, not ${describe(value)}`,
          );
        }
        block.keys = (value ?? []).map((k: unknown, j) => {
          if (k !== null && typeof k !== 'string') {
            throw new Error(
              `JSON Caddyfile: key ${j} of server block ${i} must be a string, not ${describe(k)}`,
            );
          }
          return k ?? '';
        });
      } else if (f === 'body') {
        if (value !== null && !Array.isArray(value)) {
          throw new Error(
            `JSON Caddyfile: "body" of server block ${i} must be an array, not ${describe(value)}`,
          );
        }
        block.body = (value ?? []).map((line: unknown, j) => {
          if (line !== null && !Array.isArray(line)) {
            throw new Error(
              `JSON Caddyfile: line ${j} of server block ${i} must be an array, not ${describe(line)}`,
            );
          }
          return (line ?? []) as unknown[];
        });
      }
    }
    return block;
  });
}

/**
 * JSON back to Caddyfile text, as json.go's FromJSON: `key1, key2 {`, one tab-indented line per directive, `}`;
 * blocks separated by a blank line; no trailing newline. Throws an Error on malformed JSON or a wrong shape.
 */
export function jsonToCaddyfile(json: string): string {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (e) {
    throw new Error(`Invalid JSON: ${(e as Error).message}`, { cause: e });
  }
  return decode(data)
    .map((sb) => {
      let text = `${sb.keys.join(', ')} {\n`;
      for (const line of sb.body) text += `${tabs(1)}${lineText(line, 2)}\n`;
      return `${text}}`;
    })
    .join('\n\n');
}
