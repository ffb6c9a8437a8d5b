// Caddy v1's parser (caddyfile/parse.go): text -> server blocks of tokens grouped by directive, with env
// substitution, `import` of files, globs and snippets. It knows no directive beyond the list it is given.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { type Env, EnvExpansionError, replaceEnvVars } from './env.js';
import { CaddyfileError } from './errors.js';
import { BadPatternError, glob } from './glob.js';
import { tokenize } from './lexer.js';
import { didYouMean } from './suggest.js';
import { laterLine, sameLine, type Token } from './token.js';

export interface ServerBlock {
  /** Addresses, env-expanded, trailing commas stripped, `""` dropped (a lone `,` gives `""`, as in Caddy). */
  keys: string[];
  /** The token of each key (text = the key), same order as keys, for file:line in later errors. */
  keyTokens: Token[];
  /** Directive name -> all its tokens (name token included), concatenated in file order. */
  tokens: Map<string, Token[]>;
}

export interface ParseOptions {
  /** Valid directive names; undefined accepts any name. */
  directives?: readonly string[];
  /** Variables for `{$NAME}` / `{%NAME%}`; defaults to process.env. */
  env?: Record<string, string | undefined>;
  /**
   * Directory that relative imports in the top file resolve against (for inputs such as 'stdin' or 'args').
   * Default: the directory of `file` when it names a real file, else the current directory.
   */
  baseDir?: string;
}

export interface ParseResult {
  blocks: ServerBlock[];
  /** Absolute paths of every file read by import (deduplicated), to watch for changes. */
  files: string[];
  /** E.g. `No files matching import glob pattern: <pattern>`. */
  warnings: string[];
}

/** A token plus the imports (absolute file paths, `(snippet)` names) that brought it in, to detect cycles. */
interface Entry {
  tok: Token;
  chain: readonly string[];
}

export function parse(text: string, file: string, options: ParseOptions = {}): ParseResult {
  return new Parser(text, file, options).parseAll();
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Go's filepath.Join (Clean drops a trailing separator). */
function goJoin(dir: string, p: string): string {
  const j = join(dir, p);
  return j.length > 1 && j.endsWith(sep) ? j.slice(0, -1) : j;
}

/** Node fs errors in Go's words (`open <file>: permission denied`). */
function ioMessage(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ELOOP: 'too many levels of symbolic links',
  };
  return `open ${file}: ${(code && words[code]) ?? (err as Error).message}`;
}

class Parser {
  private toks: Entry[];
  private cursor = -1;
  private block: ServerBlock = { keys: [], keyTokens: [], tokens: new Map() };
  private eof = false;
  private readonly snippets = new Map<string, Entry[]>();
  private readonly files = new Set<string>();
  private readonly warnings: string[] = [];
  private readonly env: Env;
  private readonly topDir: string;

  constructor(
    text: string,
    private readonly filename: string,
    private readonly options: ParseOptions,
  ) {
    this.env = options.env ?? process.env;
    const real = filename !== '' && isFile(filename);
    this.topDir = options.baseDir ?? (real ? dirname(resolve(filename)) : process.cwd());
    // The top file is not on the chain: it may be a name only ('stdin'), and a top file that imports itself is
    // still caught one level down.
    const chain: readonly string[] = [];
    this.toks = tokenize(text, filename).map((tok) => ({ tok, chain }));
  }

  parseAll(): ParseResult {
    const blocks: ServerBlock[] = [];
    while (this.next()) {
      this.block = { keys: [], keyTokens: [], tokens: new Map() };
      this.begin();
      if (this.block.keys.length > 0) blocks.push(this.block);
    }
    return { blocks, files: [...this.files], warnings: this.warnings };
  }

  private begin(): void {
    if (this.toks.length === 0) return;
    this.addresses();
    if (this.eof) return; // the input was only a line of addresses (QUIRK: even `(name)` then is a block)

    const name = this.snippetName();
    if (name !== undefined) {
      if (this.snippets.has(name)) throw this.err(`redeclaration of previously declared snippet ${name}`);
      this.snippets.set(name, this.snippetTokens());
      this.block.keys = []; // a snippet is not a server block
      this.block.keyTokens = [];
      return;
    }
    this.blockContents();
  }

  private addresses(): void {
    let expectingAnother = false;
    for (;;) {
      let tkn = this.expand(this.val());

      // `import` as the first token of a line in address position (top-level import)
      if (tkn === 'import' && this.isNewLine()) {
        this.doImport();
        continue;
      }
      if (tkn === '{') {
        if (expectingAnother)
          throw this.err(`Expected another address but had '${tkn}' - check for extra comma`);
        break;
      }
      if (tkn !== '') {
        // A trailing comma means another address follows, possibly on the next line.
        expectingAnother = tkn.endsWith(',');
        if (expectingAnother) tkn = tkn.slice(0, -1);
        this.block.keys.push(tkn);
        this.block.keyTokens.push({ ...this.toks[this.cursor].tok, text: tkn });
      }
      const hasNext = this.next();
      if (expectingAnother && !hasNext) throw this.err('Unexpected EOF');
      if (!hasNext) {
        this.eof = true;
        break;
      }
      if (!expectingAnother && this.isNewLine()) break;
    }
  }

  private blockContents(): void {
    const braced = this.val() === '{';
    if (!braced) this.cursor--; // single-server form: no braces
    this.directives();
    if (braced && this.val() !== '}') throw this.syntaxErr('}');
  }

  /** Directive lines until EOF or a `}` that starts a line. */
  private directives(): void {
    while (this.next()) {
      if (this.val() === '}') break;
      if (this.val() === 'import') {
        this.doImport();
        this.cursor--; // next() lands on the first imported token
        continue;
      }
      this.directive();
    }
  }

  /** Collects one directive's tokens: to the end of the line at nesting 0, `{ … }` spanning lines. */
  private directive(): void {
    const first = this.toks[this.cursor];
    const dir = this.expand(first.tok.text);
    const valid = this.options.directives;
    if (valid && !valid.includes(dir)) {
      throw this.err(`Unknown directive '${dir}'${didYouMean(dir, valid)}`);
    }
    let list = this.block.tokens.get(dir);
    if (!list) this.block.tokens.set(dir, (list = []));
    // Caddy keeps the unexpanded name token; we store the expanded name so later messages show it.
    list.push(dir === first.tok.text ? first.tok : { ...first.tok, text: dir });

    let nesting = 0;
    while (this.next()) {
      const v = this.val();
      // QUIRK: a `{` counts wherever it is, even first on the next line.
      if (v === '{') {
        nesting++;
      } else if (this.isNewLine() && nesting === 0) {
        this.cursor--; // read too far
        break;
      } else if (v === '}' && nesting > 0) {
        nesting--;
      } else if (v === '}') {
        throw this.err("Unexpected '}' because no matching opening brace");
      } else if (v === 'import' && this.isNewLine()) {
        this.doImport(); // import inside a directive's block
        this.cursor--;
        continue;
      }
      const e = this.toks[this.cursor];
      const text = this.expand(e.tok.text);
      if (text !== e.tok.text) e.tok = { ...e.tok, text, written: e.tok.text };
      list.push(e.tok);
    }
    if (nesting > 0) throw this.err('Unexpected EOF');
  }

  /**
   * Replaces `import <pattern>` (cursor on `import`) with the snippet's or the files' tokens. Afterwards the
   * cursor is on the first imported token (or on what followed the import).
   */
  private doImport(): void {
    const chain = this.toks[this.cursor].chain;
    if (!this.nextArg()) throw this.argErr();
    const pattern = this.expand(this.val());
    if (pattern === '') throw this.err('Import requires a non-empty filepath');
    if (this.nextArg()) throw this.err('Import takes only one argument (glob pattern or file)');

    let imported: Entry[] = [];
    const snippet = this.snippets.get(pattern);
    if (snippet) {
      // A snippet wins over a file of the same name.
      const next = this.extend(chain, `(${pattern})`);
      imported = snippet.map((e) => ({ tok: e.tok, chain: next }));
    } else {
      for (const file of this.importMatches(pattern)) {
        const abs = resolve(file);
        const next = this.extend(chain, abs);
        imported.push(...this.readImport(file, abs).map((tok) => ({ tok, chain: next })));
      }
    }
    const start = this.cursor - 1;
    this.toks = [...this.toks.slice(0, start), ...imported, ...this.toks.slice(start + 2)];
    this.cursor--;
  }

  /** The files an import pattern names: relative to the importing token's file, in lexical order. */
  private importMatches(pattern: string): string[] {
    const tokFile = this.file();
    const dir = tokFile === this.filename ? this.topDir : dirname(resolve(tokFile));
    const globPattern = isAbsolute(pattern) ? pattern : goJoin(dir, pattern);
    const count = (c: string): number => globPattern.split(c).length - 1;
    if (count('*') > 1 || count('?') > 1 || (globPattern.includes('[') && globPattern.includes(']'))) {
      // Caddy's limit against patterns that take too long to expand (issue #2096).
      throw this.err(`Glob pattern may only contain one wildcard (*), but has others: ${globPattern}`);
    }
    let matches: string[];
    try {
      matches = glob(globPattern);
    } catch (e) {
      if (e instanceof BadPatternError)
        throw this.err(`Failed to use import pattern ${pattern}: ${e.message}`);
      throw e;
    }
    if (matches.length === 0) {
      if (/[*?[\]]/.test(globPattern))
        this.warnings.push(`No files matching import glob pattern: ${pattern}`);
      else throw this.err(`File to import not found: ${pattern}`);
    }
    return matches;
  }

  /** Lexes one imported file; its tokens carry its absolute path. */
  private readImport(file: string, abs: string): Token[] {
    let text: string;
    try {
      if (statSync(file).isDirectory()) throw this.err(`Could not import ${file}: is a directory`);
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (e instanceof CaddyfileError) throw e;
      throw this.err(`Could not import ${file}: ${ioMessage(file, e)}`);
    }
    // QUIRK: an empty file is an error (Go's lexer reports io.EOF when it cannot read a first rune).
    if (text.length === 0) throw this.err(`Could not read tokens while importing ${file}: EOF`);
    this.files.add(abs);
    return tokenize(text, abs);
  }

  /** Caddy v1 had no cycle check (it looped forever); we refuse an import already on the chain. */
  private extend(chain: readonly string[], source: string): readonly string[] {
    const at = chain.indexOf(source);
    if (at !== -1) {
      throw this.err(`Import cycle detected: ${[...chain.slice(at), source].join(' -> ')}`);
    }
    return [...chain, source];
  }

  private snippetName(): string | undefined {
    const keys = this.block.keys;
    if (keys.length === 1 && keys[0].startsWith('(') && keys[0].endsWith(')')) {
      const inner = keys[0].slice(1);
      return inner.endsWith(')') ? inner.slice(0, -1) : inner;
    }
    return undefined;
  }

  /** A snippet's tokens, verbatim, up to the matching `}`. */
  private snippetTokens(): Entry[] {
    if (this.val() !== '{') throw this.syntaxErr('{');
    let count = 1;
    const out: Entry[] = [];
    while (this.next()) {
      if (this.val() === '}' && --count === 0) break;
      if (this.val() === '{') count++;
      out.push(this.toks[this.cursor]);
    }
    if (count !== 0) throw this.syntaxErr('}');
    return out;
  }

  private expand(text: string): string {
    try {
      return replaceEnvVars(text, this.env);
    } catch (e) {
      if (e instanceof EnvExpansionError) throw this.err(e.message);
      throw e;
    }
  }

  // --- Dispenser primitives over the mutable token list (Go's parser embeds a Dispenser) ---

  private next(): boolean {
    if (this.cursor < this.toks.length - 1) {
      this.cursor++;
      return true;
    }
    return false;
  }

  private nextArg(): boolean {
    const cur = this.toks[this.cursor]?.tok;
    const nxt = this.toks[this.cursor + 1]?.tok;
    if (cur && nxt && sameLine(cur, nxt)) {
      this.cursor++;
      return true;
    }
    return false;
  }

  /** Whether the current token starts a line (true for the first token). */
  private isNewLine(): boolean {
    if (this.cursor < 1) return true;
    const cur = this.toks[this.cursor]?.tok;
    const prev = this.toks[this.cursor - 1]?.tok;
    if (!cur || !prev) return false;
    return laterLine(prev, cur);
  }

  private cur(): Token | undefined {
    return this.cursor >= 0 ? this.toks[this.cursor]?.tok : undefined;
  }

  private val(): string {
    return this.cur()?.text ?? '';
  }

  private file(): string {
    return this.cur()?.file || this.filename;
  }

  private err(msg: string): CaddyfileError {
    return CaddyfileError.parse(this.file(), this.cur()?.line ?? 0, msg);
  }

  private syntaxErr(expected: string): CaddyfileError {
    return CaddyfileError.syntax(this.file(), this.cur()?.line ?? 0, this.val(), expected);
  }

  private argErr(): CaddyfileError {
    if (this.val() === '{') return this.err("Unexpected token '{', expecting argument");
    return this.err(`Wrong argument count or unexpected line ending after '${this.val()}'`);
  }
}
