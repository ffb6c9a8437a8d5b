// The directive registry in Caddy v1's fixed order, outermost first. Adding a directive = one module plus
// one line here. The order in the Caddyfile never matters; this list does.
import type { Directive } from '../core/directive.js';
import { bind } from './bind.js';
import { index } from './indexfiles.js';
import { root } from './root.js';
import { tunnel } from './tunnel/index.js';

export const directives: readonly Directive<unknown>[] = [root, index, bind, tunnel];

export const directiveNames: readonly string[] = directives.map((d) => d.name);

export { staticFiles } from './static/index.js';
