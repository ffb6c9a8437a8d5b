/** One lexical unit of a Caddyfile, with where it came from (for file:line in errors). */
export interface Token {
  text: string;
  /** The input name for the top file (e.g. `Caddyfile`, `stdin`), the absolute path for imported files. */
  file: string;
  /** 1-based line where the token started. */
  line: number;
  /** The text as written, when environment substitution (`{$NAME}`) changed it; for messages. */
  written?: string;
}

/** How many `\n` a token's text holds (quoted tokens may span lines). */
export function lineBreaks(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Caddy's NextArg test: `next` is on the line where `cur` ends, in the same file. */
export function sameLine(cur: Token, next: Token): boolean {
  return cur.file === next.file && cur.line + lineBreaks(cur.text) === next.line;
}

/** Caddy's NextLine/isNewLine test: `next` is on a later line than where `cur` ends, or in another file. */
export function laterLine(cur: Token, next: Token): boolean {
  return cur.file !== next.file || cur.line + lineBreaks(cur.text) < next.line;
}
