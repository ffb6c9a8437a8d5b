// Caddy v1 placeholders (`{method}`, `{>Header}`, `{?arg}`, …): compiled once per config, rendered per request.
//
// Syntax, as Caddy v1's replacer reads it:
// - The first unescaped `{` up to the first unescaped `}` after it is a placeholder. So
//   `{>Custom placeholder {>ShorterVal}` names the header `Custom placeholder {>ShorterVal` (Caddy's quirk).
// - `\{` and `\}` are literal braces; the backslash is dropped (also inside a placeholder's name).
// - A `{` without a closing `}` is literal text.
// - An unknown name or an empty value gives the template's empty value ('' or, in log, '-'), except `{?arg}`,
//   which always gives '' for a missing argument.
// - Custom values set by middleware in `ctx.vars` (`user`, `upstream`, rewrite's `1`..`n`, …) win over built-ins.
import type { RequestContext } from './context.js';
import { builtinGetter, type Getter } from './replacer-values.js';

export interface TemplateOptions {
  /** What an unknown or empty placeholder gives: '' by default, '-' in log. */
  emptyValue?: string;
  /** Applied to every placeholder's value (not to the template's own text): log lines escape controls. */
  escape?: (value: string) => string;
}

/** Drops the backslash of every `\{` and `\}`. */
function unescapeBraces(s: string, from: number, to: number): string {
  let out = '';
  let chunk = from;
  let i = s.indexOf('\\', from);
  while (i >= 0 && i + 1 < to) {
    const next = s.charCodeAt(i + 1);
    if (next === 0x7b || next === 0x7d) {
      out += s.slice(chunk, i);
      chunk = i + 1;
      i = s.indexOf('\\', i + 2);
    } else i = s.indexOf('\\', i + 1);
  }
  return out + s.slice(chunk, to);
}

/** A `{`/`}` at i is escaped when a backslash precedes it (and it is not the first character of the scan). */
function findUnescaped(s: string, ch: string, from: number): number {
  let i = s.indexOf(ch, from);
  while (i > from && s.charCodeAt(i - 1) === 0x5c /* \ */) i = s.indexOf(ch, i + 1);
  return i;
}

export class Template {
  /** The text as written in the config. */
  readonly source: string;
  /** True when the text has no placeholders: render returns a constant string. */
  readonly isStatic: boolean;
  /** Placeholder names in order of appearance (without braces), e.g. for a directive to see what it needs. */
  readonly placeholders: readonly string[];

  private readonly head: string;
  private readonly getters: readonly Getter[];
  private readonly tails: readonly string[];
  /** Per placeholder: its empty value (`{?arg}` always has ''). */
  private readonly empties: readonly string[];
  private readonly escape: ((value: string) => string) | undefined;

  constructor(source: string, opts: TemplateOptions = {}) {
    const emptyValue = opts.emptyValue ?? '';
    this.source = source;
    const names: string[] = [];
    const getters: Getter[] = [];
    const tails: string[] = [];
    const empties: string[] = [];
    let head = '';
    if (source.indexOf('{') < 0 && source.indexOf('}') < 0) head = source;
    else {
      let pos = 0;
      for (;;) {
        const open = findUnescaped(source, '{', pos);
        const close = open < 0 ? -1 : findUnescaped(source, '}', open + 1);
        if (close < 0) {
          // No more placeholders (or an unpaired `{`): the rest is literal.
          const rest = unescapeBraces(source, pos, source.length);
          if (names.length === 0) head = rest;
          else tails[tails.length - 1] += rest;
          break;
        }
        const literal = unescapeBraces(source, pos, open);
        if (names.length === 0) head = literal;
        else tails[tails.length - 1] += literal;
        const name = unescapeBraces(source, open + 1, close);
        names.push(name);
        getters.push(builtinGetter(name));
        tails.push('');
        empties.push(name.startsWith('?') ? '' : emptyValue);
        pos = close + 1;
      }
    }
    this.head = head;
    this.placeholders = names;
    this.getters = getters;
    this.tails = tails;
    this.empties = empties;
    this.escape = opts.escape;
    this.isStatic = names.length === 0;
  }

  /** The text with every placeholder replaced by its value for this request. */
  render(ctx: RequestContext): string {
    const getters = this.getters;
    const n = getters.length;
    if (n === 0) return this.head;
    const vars = ctx.vars.size > 0 ? ctx.vars : undefined;
    const names = this.placeholders;
    let out = this.head;
    for (let i = 0; i < n; i++) {
      let v = vars?.get(names[i]);
      if (v === undefined) v = getters[i](ctx);
      out += v === '' ? this.empties[i] : this.escape === undefined ? v : this.escape(v);
      out += this.tails[i];
    }
    return out;
  }
}

/** Compiles a text with placeholders once; render it per request. */
export function compileTemplate(text: string, opts?: TemplateOptions): Template {
  return new Template(text, opts);
}

const CACHE_LIMIT = 256;
/** Compiled templates for one-off use, per empty value; the oldest entry goes when a map is full. */
const cache = new Map<string, Map<string, Template>>();

/** Convenience for one-off use: compiles (with a small bounded cache) and renders. */
export function replacePlaceholders(ctx: RequestContext, text: string, opts?: TemplateOptions): string {
  const emptyValue = opts?.emptyValue ?? '';
  let templates = cache.get(emptyValue);
  if (!templates) {
    if (cache.size >= 8) cache.delete(cache.keys().next().value!);
    templates = new Map();
    cache.set(emptyValue, templates);
  }
  let t = templates.get(text);
  if (!t) {
    if (templates.size >= CACHE_LIMIT) templates.delete(templates.keys().next().value!);
    t = new Template(text, { emptyValue });
    templates.set(text, t);
  }
  return t.render(ctx);
}
