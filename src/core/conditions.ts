// Caddy v1's `if <a> <op> <b>` / `if_op and|or` request conditions (httpserver/condition.go), shared by
// `redir` and `rewrite`. Compiled once per config: templates and regexes are built in setup.
import { compileTemplate, type Template } from './replacer.js';
import type { RequestContext } from './context.js';

const OPERATORS = ['is', 'not', 'has', 'starts_with', 'ends_with', 'match'] as const;
type Operator = (typeof OPERATORS)[number];

/**
 * A Go-syntax regular expression as a JS RegExp. Go's leading flag group `(?i)`, `(?s)`, `(?m)` (any mix)
 * becomes JS flags, `(?P<name>` becomes `(?<name>`, and `\z` (end of text) becomes `$`. Throws with the reason.
 */
export function compileGoRegExp(pattern: string, extraFlags = ''): RegExp {
  let source = pattern;
  let flags = extraFlags;
  const lead = /^\(\?([ims]+)\)/.exec(source);
  if (lead) {
    for (const f of lead[1]) if (!flags.includes(f)) flags += f;
    source = source.slice(lead[0].length);
  }
  source = source.replace(/\(\?P</g, '(?<').replace(/\\z/g, '$');
  return new RegExp(source, flags);
}

export class IfCondition {
  private readonly a: Template;
  private readonly b: Template | undefined;
  private readonly regex: RegExp | undefined;
  private readonly op: Operator;
  private readonly negate: boolean;

  /** Throws a plain Error with Caddy's message; the caller adds file:line. */
  constructor(a: string, op: string, b: string) {
    this.negate = op.startsWith('not_');
    const base = this.negate ? op.slice(4) : op;
    if (!(OPERATORS as readonly string[]).includes(base)) throw new Error(`Invalid operator ${base}`);
    this.op = base as Operator;
    this.a = compileTemplate(a);
    if (this.op === 'match') {
      // As in Caddy, the pattern itself is not placeholder-replaced.
      try {
        this.regex = compileGoRegExp(b);
      } catch (err) {
        throw new Error(`Invalid regular expression: '${b}', ${(err as Error).message}`, { cause: err });
      }
    } else this.b = compileTemplate(b);
  }

  test(ctx: RequestContext): boolean {
    const a = this.a.render(ctx);
    let result: boolean;
    if (this.regex) result = this.regex.test(a);
    else {
      const b = this.b!.render(ctx);
      switch (this.op) {
        case 'is':
          result = a === b;
          break;
        case 'not':
          result = a !== b;
          break;
        case 'has':
          result = a.includes(b);
          break;
        case 'starts_with':
          result = a.startsWith(b);
          break;
        default:
          result = a.endsWith(b);
      }
    }
    return this.negate ? !result : result;
  }
}

/** All conditions of one block, joined by `and` (default) or `or`. With no condition it always matches. */
export class IfMatcher {
  private readonly conditions: IfCondition[] = [];
  private or = false;

  get enabled(): boolean {
    return this.conditions.length > 0;
  }

  /**
   * Takes one block line if it is `if` or `if_op` (returns true), else leaves it (false). `args` are the
   * tokens after the keyword. Throws a plain Error with the reason; the caller adds file:line.
   */
  takeLine(keyword: string, args: readonly string[]): boolean {
    if (keyword === 'if') {
      if (args.length !== 3) throw new Error('expected: if <a> <operator> <b>');
      this.conditions.push(new IfCondition(args[0], args[1], args[2]));
      return true;
    }
    if (keyword === 'if_op') {
      if (args.length !== 1 || (args[0] !== 'and' && args[0] !== 'or'))
        throw new Error('expected: if_op and|or');
      this.or = args[0] === 'or';
      return true;
    }
    return false;
  }

  matches(ctx: RequestContext): boolean {
    const conds = this.conditions;
    if (conds.length === 0) return true;
    if (this.or) {
      for (const c of conds) if (c.test(ctx)) return true;
      return false;
    }
    for (const c of conds) if (!c.test(ctx)) return false;
    return true;
  }
}
