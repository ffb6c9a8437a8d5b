// The Caddyfile package: text -> server blocks of tokens (knows no directive), a Dispenser for directive setup,
// and the JSON conversions. Imports nothing else of the project.
export type { Token } from './token.js';
export { CaddyfileError, parseError, syntaxError } from './errors.js';
export { tokenize } from './lexer.js';
export { parse, type ParseOptions, type ParseResult, type ServerBlock } from './parser.js';
export { Dispenser } from './dispenser.js';
export { caddyfileToJson, jsonToCaddyfile } from './json.js';
export { replaceEnvVars, MAX_ENV_REPLACEMENTS } from './env.js';
export { closest, didYouMean } from './suggest.js';
