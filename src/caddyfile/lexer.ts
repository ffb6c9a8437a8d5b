// The Caddy v1 lexer (caddyfile/lexer.go), quirks included:
// - a single leading BOM is dropped;
// - `\r` outside quotes is skipped without ending the token (`ab\rcd` is `abcd`);
// - an unquoted `#` starts a comment even in the middle of a word (`foo#bar` is `foo`);
// - a `"` opens a quoted token only as the first character of a token, and the token ends right at the closing
//   quote (`"a"b` is `a`, `b`); inside quotes only `\"` is an escape, any other `\x` keeps both characters;
// - `""` is an empty token; an unterminated quote runs to EOF;
// - `{` and `}` are ordinary tokens (so `foo{` and `{}` are single tokens).
import type { Token } from './token.js';

/** Go's unicode.IsSpace. */
export function isSpace(cp: number): boolean {
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return (
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

const BOM = 0xfeff;
const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const HASH = 0x23;
const BACKSLASH = 0x5c;

/**
 * Splits Caddyfile text into tokens, each with `file` and the line it started on. Empty input gives no tokens
 * (whether an empty file is an error is the importer's business, as in Caddy).
 */
export function tokenize(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let val = '';
  let startLine = 1;
  let comment = false;
  let quoted = false;
  let escaped = false;
  let first = true;

  const emit = (): void => {
    tokens.push({ text: val, file, line: startLine });
    val = '';
  };

  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (first) {
      first = false;
      if (cp === BOM) continue;
    }

    if (quoted) {
      if (!escaped) {
        if (cp === BACKSLASH) {
          escaped = true;
          continue;
        }
        if (cp === QUOTE) {
          quoted = false;
          emit();
          continue;
        }
      }
      if (cp === NL) line++;
      // Only `\"` is an escape: any other escaped character keeps its backslash.
      if (escaped && cp !== QUOTE) val += '\\';
      val += ch;
      escaped = false;
      continue;
    }

    if (isSpace(cp)) {
      if (cp === CR) continue; // QUIRK: skipped without ending the token
      if (cp === NL) {
        line++;
        comment = false;
      }
      if (val.length > 0) emit();
      continue;
    }

    if (cp === HASH) comment = true;
    if (comment) continue;

    if (val.length === 0) {
      startLine = line;
      if (cp === QUOTE) {
        quoted = true;
        continue;
      }
    }
    val += ch;
  }
  // At EOF a pending token with text is emitted (an unterminated `"` with nothing after it is not a token).
  if (val.length > 0) emit();
  return tokens;
}
