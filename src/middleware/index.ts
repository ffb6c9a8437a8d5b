// The directive registry in Caddy v1's fixed order, outermost first. Adding a directive = one module plus
// one line here. The order in the Caddyfile never matters; this list does.
import type { Directive } from '../core/directive.js';
import { bind } from './bind.js';
import { errors } from './errors/index.js';
import { gzip } from './gzip/index.js';
import { index } from './indexfiles.js';
import { log } from './log/index.js';
import { root } from './root.js';

export const directives: readonly Directive<unknown>[] = [root, index, bind, log, gzip, errors];

export const directiveNames: readonly string[] = directives.map((d) => d.name);

export { staticFiles } from './static/index.js';
