// The directive registry in Caddy v1's fixed order, outermost first. Adding a directive = one module plus
// one line here. The order in the Caddyfile never matters; this list does.
import type { Directive } from '../core/directive.js';
import { basicauth } from './basicauth/index.js';
import { bind } from './bind.js';
import { browse } from './browse/index.js';
import { errors } from './errors/index.js';
import { ext } from './ext.js';
import { fastcgi } from './fastcgi/index.js';
import { gzip } from './gzip/index.js';
import { header } from './header.js';
import { dotfiles, hide } from './hidefiles.js';
import { index } from './indexfiles.js';
import { internal } from './internal.js';
import { limits } from './limits.js';
import { log } from './log/index.js';
import { mime } from './mime.js';
import { proxy } from './proxy/index.js';
import { redir } from './redir.js';
import { rewrite } from './rewrite.js';
import { root } from './root.js';
import { status } from './status.js';
import { symlinks } from './symlinks.js';
import { timeouts } from './timeouts.js';
import { tls } from './tls.js';
import { tunnel } from './tunnel/index.js';

export const directives: readonly Directive<unknown>[] = [
  root,
  index,
  symlinks,
  bind,
  limits,
  timeouts,
  tls,
  dotfiles,
  hide,
  log,
  rewrite,
  ext,
  gzip,
  header,
  errors,
  basicauth,
  redir,
  status,
  mime,
  internal,
  proxy,
  tunnel,
  fastcgi,
  browse,
];

export const directiveNames: readonly string[] = directives.map((d) => d.name);

export { staticFiles } from './static/index.js';
