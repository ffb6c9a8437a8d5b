// Header rules shared by `header`, `proxy` (header_upstream / header_downstream) and `tunnel`:
// `Name value` sets, `+Name value` adds, `-Name` removes, `Name <regex> <replacement>` edits a value in place.
// Compiled once per config; values take placeholders, rendered per request.
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpResponse } from './response.js';
import type { RequestContext } from './context.js';
import { compileTemplate, type Template } from './replacer.js';

export type HeaderOp = 'set' | 'add' | 'remove' | 'replace';

export interface HeaderRule {
  readonly op: HeaderOp;
  /** Lower-cased header name. */
  readonly name: string;
  /** The name as written (for messages). */
  readonly displayName: string;
  /** set/add: the value; replace: the replacement. */
  readonly value?: Template;
  /** replace: the pattern (global). */
  readonly pattern?: RegExp;
}

/** What rules act on: request headers (a plain object) or a response (setHeader & co.). */
export interface HeaderBag {
  get(name: string): string | string[] | number | undefined;
  set(name: string, value: string | string[]): void;
  remove(name: string): void;
}

export function objectHeaderBag(headers: OutgoingHttpHeaders): HeaderBag {
  return {
    // Only the map's own fields: a rule for `Constructor` must not find Object's constructor.
    get: (name) => (Object.hasOwn(headers, name) ? headers[name] : undefined),
    set: (name, value) => {
      headers[name] = value;
    },
    remove: (name) => {
      delete headers[name];
    },
  };
}

export function responseHeaderBag(res: HttpResponse): HeaderBag {
  return {
    get: (name) => res.getHeader(name),
    set: (name, value) => {
      res.setHeader(name, value);
    },
    remove: (name) => {
      res.removeHeader(name);
    },
  };
}

/**
 * One rule from a directive line's arguments: `[Name]`, `[Name, value]` or `[Name, regex, replacement]`.
 * `valueIfMissing` is what a bare `Name` means (Caddy's `header` quirk: the name itself on the directive
 * line, '' inside a block). Throws a plain Error with the reason; the caller adds file:line.
 */
export function parseHeaderRule(args: readonly string[], valueIfMissing = ''): HeaderRule {
  if (args.length === 0 || args.length > 3)
    throw new Error('expected: <Name> [<value>] or <Name> <regex> <replacement>');
  const written = args[0];
  const first = written[0];
  if (first === '-') {
    const name = written.slice(1);
    if (!name) throw new Error("header name missing after '-'");
    return { op: 'remove', name: name.toLowerCase(), displayName: name };
  }
  if (args.length === 3) {
    if (first === '+') throw new Error("'+' and '-' prefixes cannot be used with a regex replacement");
    let pattern: RegExp;
    try {
      pattern = new RegExp(args[1], 'g');
    } catch (err) {
      throw new Error(`invalid regular expression '${args[1]}': ${(err as Error).message}`, { cause: err });
    }
    return {
      op: 'replace',
      name: written.toLowerCase(),
      displayName: written,
      pattern,
      value: compileTemplate(args[2]),
    };
  }
  const add = first === '+';
  const name = add ? written.slice(1) : written;
  if (!name) throw new Error("header name missing after '+'");
  return {
    op: add ? 'add' : 'set',
    name: name.toLowerCase(),
    displayName: name,
    value: compileTemplate(args.length === 2 ? args[1] : valueIfMissing),
  };
}

export interface ApplyOptions {
  /** Proxy semantics: a set/add whose value renders empty is skipped (Caddy v1 header_upstream). */
  skipEmpty?: boolean;
}

/** Applies rules in order. Every value set is made safe to send first (see headerValue). */
export function applyHeaderRules(
  rules: readonly HeaderRule[],
  ctx: RequestContext,
  bag: HeaderBag,
  opts: ApplyOptions = {},
): void {
  for (const rule of rules) {
    switch (rule.op) {
      case 'remove':
        bag.remove(rule.name);
        break;
      case 'set': {
        const v = headerValue(rule.value!.render(ctx));
        if (v === '' && opts.skipEmpty) break;
        bag.set(rule.name, v);
        break;
      }
      case 'add': {
        const v = headerValue(rule.value!.render(ctx));
        if (v === '' && opts.skipEmpty) break;
        const prev = bag.get(rule.name);
        if (prev === undefined) bag.set(rule.name, v);
        else bag.set(rule.name, [...(Array.isArray(prev) ? prev : [String(prev)]), v]);
        break;
      }
      case 'replace': {
        const prev = bag.get(rule.name);
        if (prev === undefined) break;
        const replacement = rule.value!.render(ctx);
        const edit = (s: string) => headerValue(s.replace(rule.pattern!, replacement));
        bag.set(rule.name, Array.isArray(prev) ? prev.map(edit) : edit(String(prev)));
        break;
      }
    }
  }
}

/** What a header value may not carry: controls other than tab, and characters beyond Latin-1. */
const UNSENDABLE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * A rendered value made safe for a header line. Placeholders put request data into values (`{?q}`,
 * `{path}` are decoded), so a value can hold CR, LF or NUL, which would inject header lines (or, with
 * Node, throw and turn the response into a 500). CR and LF become spaces (as Go's net/http writes them),
 * other control characters are dropped, and a value with characters beyond Latin-1 is sent as its UTF-8
 * bytes (what Caddy sends; Node writes header strings as Latin-1).
 */
export function headerValue(value: string): string {
  if (!UNSENDABLE.test(value)) return value;
  let out = '';
  let wide = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) out += ' ';
    else if ((c < 0x20 && c !== 0x09) || c === 0x7f) continue;
    else {
      out += value[i];
      if (c > 0xff) wide = true;
    }
  }
  return wide ? Buffer.from(out, 'utf8').toString('latin1') : out;
}
