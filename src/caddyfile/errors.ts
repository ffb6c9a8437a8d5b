/**
 * A parse-time error that names the file and line, in one of Caddy v1's two exact shapes:
 *   `<file>:<line> - Error during parsing: <message>`
 *   `<file>:<line> - Syntax error: Unexpected token '<tok>', expecting '<exp>'`
 */
export class CaddyfileError extends Error {
  readonly file: string;
  readonly line: number;
  /** The part after the `file:line - ` prefix's kind, e.g. `Unknown directive 'gzp'`. */
  readonly detail: string;

  private constructor(file: string, line: number, message: string, detail: string) {
    super(message);
    this.name = 'CaddyfileError';
    this.file = file;
    this.line = line;
    this.detail = detail;
  }

  /** `${file}:${line} - Error during parsing: ${msg}` */
  static parse(file: string, line: number, msg: string): CaddyfileError {
    return new CaddyfileError(file, line, `${file}:${line} - Error during parsing: ${msg}`, msg);
  }

  /** `${file}:${line} - Syntax error: Unexpected token '${tok}', expecting '${expected}'` */
  static syntax(file: string, line: number, tok: string, expected: string): CaddyfileError {
    const detail = `Unexpected token '${tok}', expecting '${expected}'`;
    return new CaddyfileError(file, line, `${file}:${line} - Syntax error: ${detail}`, detail);
  }
}

export function parseError(file: string, line: number, msg: string): CaddyfileError {
  return CaddyfileError.parse(file, line, msg);
}

export function syntaxError(file: string, line: number, tok: string, expected: string): CaddyfileError {
  return CaddyfileError.syntax(file, line, tok, expected);
}
