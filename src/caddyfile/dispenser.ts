// A cursor over one directive's tokens, with Caddy v1's Dispenser semantics (caddyfile/dispenser.go).
import { CaddyfileError } from './errors.js';
import { didYouMean } from './suggest.js';
import { laterLine, sameLine, type Token } from './token.js';

export class Dispenser {
  readonly #tokens: readonly Token[];
  readonly #filename: string;
  #cursor = -1;
  #nesting = 0;

  /**
   * @param filename used by file() (and so by errors) when no token is loaded; defaults to the first token's file.
   */
  constructor(tokens: readonly Token[], filename?: string) {
    this.#tokens = tokens;
    this.#filename = filename ?? tokens[0]?.file ?? '';
  }

  /** Index of the current token (-1 before the first); for diagnostics and tests. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Moves to the next token, across lines. At the end it returns false and the cursor stays on the last token. */
  next(): boolean {
    if (this.#cursor < this.#tokens.length - 1) {
      this.#cursor++;
      return true;
    }
    return false;
  }

  /** Moves to the next token only if it is on the same line (and in the same file) as the current one. */
  nextArg(): boolean {
    return this.#advanceIf(sameLine);
  }

  /** Moves to the next token only if it is on a later line or in another file. */
  nextLine(): boolean {
    return this.#advanceIf(laterLine);
  }

  /** Loads the first token unconditionally; after that, the next one only if `follows(current, next)`. */
  #advanceIf(follows: (cur: Token, nxt: Token) => boolean): boolean {
    if (this.#cursor < 0) {
      this.#cursor++;
      return true;
    }
    const cur = this.#tokens[this.#cursor];
    const nxt = this.#tokens[this.#cursor + 1];
    if (cur && nxt && follows(cur, nxt)) {
      this.#cursor++;
      return true;
    }
    return false;
  }

  /**
   * For `while (d.nextBlock())`: outside a block, enters one if the next token is `{` on the same line (an empty
   * `{ }` counts as no block); inside, loads the next token and returns false at the block's `}`. One level only.
   */
  nextBlock(): boolean {
    if (this.#nesting > 0) {
      // Go would keep returning true at the end of unbalanced tokens; we end the block instead of looping forever.
      if (!this.next()) {
        this.#nesting = 0;
        return false;
      }
      if (this.val() === '}') {
        this.#nesting--;
        return false;
      }
      return true;
    }
    if (!this.nextArg()) return false; // the block must open on the same line
    if (this.val() !== '{') {
      this.#cursor--; // roll back if not an opening brace
      return false;
    }
    this.next();
    if (this.val() === '}') return false; // opened and closed right away: as if there were no block
    this.#nesting++;
    return true;
  }

  /** Text of the current token, or '' when none is loaded. */
  val(): string {
    return this.#current()?.text ?? '';
  }

  /** Text of the current token as written in the file, before `{$NAME}` substitution ('' when none). */
  written(): string {
    const token = this.#current();
    return token?.written ?? token?.text ?? '';
  }

  /** Line of the current token, or 0 when none is loaded. */
  line(): number {
    return this.#current()?.line ?? 0;
  }

  /** File of the current token, or the dispenser's filename when none is loaded. */
  file(): string {
    const f = this.#current()?.file;
    return f ? f : this.#filename;
  }

  /** Depth of the block entered by nextBlock (0 or 1). */
  nesting(): number {
    return this.#nesting;
  }

  /**
   * Caddy's Args: reads up to `count` arguments on the same line. Returns them, or null if fewer were available
   * (the cursor has then consumed the ones it read, as in Go).
   */
  args(count: number): string[] | null {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      if (!this.nextArg()) return null;
      out.push(this.val());
    }
    return out;
  }

  /** The rest of the same-line arguments, stopping before a `{` (which is not consumed). */
  remainingArgs(): string[] {
    const out: string[] = [];
    while (this.nextArg()) {
      if (this.val() === '{') {
        this.#cursor--;
        break;
      }
      out.push(this.val());
    }
    return out;
  }

  /** Another argument was expected but a line ending (or `{`) came instead. */
  argErr(): CaddyfileError {
    if (this.val() === '{') return this.err("Unexpected token '{', expecting argument");
    return this.err(`Wrong argument count or unexpected line ending after '${this.val()}'`);
  }

  /** `file:line - Error during parsing: msg` at the current token. */
  err(msg: string): CaddyfileError {
    return CaddyfileError.parse(this.file(), this.line(), msg);
  }

  /** `file:line - Syntax error: Unexpected token 'cur', expecting 'expected'`. */
  syntaxErr(expected: string): CaddyfileError {
    return CaddyfileError.syntax(this.file(), this.line(), this.val(), expected);
  }

  /** `Unexpected EOF` at the current token. */
  eofErr(): CaddyfileError {
    return this.err('Unexpected EOF');
  }

  /** `Unknown subdirective 'x'`, plus ` (did you mean 'y'?)` when `known` holds a close name. */
  unknownSubdirective(known?: readonly string[]): CaddyfileError {
    return this.err(`Unknown subdirective '${this.val()}'${didYouMean(this.val(), known)}`);
  }

  #current(): Token | undefined {
    return this.#cursor >= 0 ? this.#tokens[this.#cursor] : undefined;
  }
}
