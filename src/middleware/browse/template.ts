// A small logic-less template format for listings (Go templates do not exist here):
//   {{name}}            the value, HTML-escaped (always: there is no unescaped form)
//   {{a.b}}             a property of a value
//   {{#name}}…{{/name}} repeated for each element of a list, or shown once when the value is truthy;
//                       inside, the element's fields are in scope (and everything outside stays visible)
//   {{^name}}…{{/name}} shown when the value is false, empty or missing
//   {{! comment }}
// Placeholder names are checked against the listing's fields when the template is compiled, so a typo is
// a load error with its line, not an empty spot on the page.

/** The names a scope offers; a nested Schema is what a section over that name sees. */
export interface Schema {
  readonly [name: string]: true | Schema;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'var'; path: string[] }
  | { kind: 'section'; path: string[]; inverted: boolean; body: Node[] };

export class TemplateError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`${message} (template line ${line})`);
  }
}

export interface Template {
  render(data: unknown): string;
}

const TAG = /\{\{\s*([#^/!]?)\s*([^}]*?)\s*\}\}/g;

export function compileTemplate(source: string, schema: Schema): Template {
  const root: Node[] = [];
  const stack: { name: string; body: Node[]; line: number; schema: Schema }[] = [];
  const scopes: Schema[] = [schema];
  let body = root;
  let last = 0;
  const lineAt = (index: number) => source.slice(0, index).split('\n').length;

  for (const m of source.matchAll(TAG)) {
    const index = m.index;
    if (index > last) body.push({ kind: 'text', text: source.slice(last, index) });
    last = index + m[0].length;
    const [, sigil, name] = m;
    const line = lineAt(index);
    if (sigil === '!') continue;
    if (sigil === '/') {
      const open = stack.pop();
      if (!open) throw new TemplateError(`{{/${name}}} closes nothing`, line);
      if (open.name !== name)
        throw new TemplateError(`{{/${name}}} closes {{#${open.name}}} (line ${open.line})`, line);
      scopes.shift();
      body = stack.length ? stack[stack.length - 1].body : root;
      continue;
    }
    if (!/^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*$|^\.$/.test(name))
      throw new TemplateError(`'{{${sigil}${name}}}' is not a placeholder name`, line);
    const path = name === '.' ? [] : name.split('.');
    const found = name === '.' ? true : resolveSchema(scopes, path);
    if (found === undefined)
      throw new TemplateError(
        `unknown placeholder {{${name}}}; known here: ${knownNames(scopes).join(', ')}`,
        line,
      );
    if (sigil === '#' || sigil === '^') {
      const node: Node = { kind: 'section', path, inverted: sigil === '^', body: [] };
      body.push(node);
      stack.push({ name, body: node.body, line, schema: found === true ? {} : found });
      scopes.unshift(sigil === '#' && found !== true ? found : {});
      body = node.body;
    } else {
      if (found !== true)
        throw new TemplateError(`{{${name}}} is a list: use {{#${name}}}…{{/${name}}}`, line);
      body.push({ kind: 'var', path });
    }
  }
  if (stack.length) {
    const open = stack[stack.length - 1];
    throw new TemplateError(`{{#${open.name}}} is never closed`, open.line);
  }
  if (last < source.length) root.push({ kind: 'text', text: source.slice(last) });
  return { render: (data) => renderNodes(root, [data]) };
}

function resolveSchema(scopes: Schema[], path: string[]): true | Schema | undefined {
  for (const scope of scopes) {
    let s: true | Schema | undefined = scope;
    for (const part of path)
      s = s === true || s === undefined ? undefined : Object.hasOwn(s, part) ? s[part] : undefined;
    if (s !== undefined) return s;
  }
  return undefined;
}

function knownNames(scopes: Schema[]): string[] {
  return [...new Set(scopes.flatMap((s) => Object.keys(s)))];
}

function lookup(stack: unknown[], path: string[]): unknown {
  if (path.length === 0) return stack[stack.length - 1];
  for (let i = stack.length - 1; i >= 0; i--) {
    const ctx = stack[i];
    if (ctx !== null && typeof ctx === 'object' && Object.hasOwn(ctx, path[0])) {
      let v: unknown = ctx;
      for (const part of path)
        v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
      return v;
    }
  }
  return undefined;
}

function renderNodes(nodes: Node[], stack: unknown[]): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'var') out += escapeHtml(lookup(stack, node.path));
    else {
      const v = lookup(stack, node.path);
      const empty =
        v === undefined ||
        v === null ||
        v === false ||
        v === '' ||
        v === 0 ||
        (Array.isArray(v) && v.length === 0);
      if (node.inverted) {
        if (empty) out += renderNodes(node.body, stack);
      } else if (Array.isArray(v)) {
        for (const item of v) out += renderNodes(node.body, [...stack, item]);
      } else if (!empty) out += renderNodes(node.body, typeof v === 'object' ? [...stack, v] : stack);
    }
  }
  return out;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(v: unknown): string {
  // Objects have no useful text form: the schema check keeps them out of {{…}}, and they print as nothing.
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return '';
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}
