// basicauth <path> <user> <pass> | basicauth <user> <pass> { <path>…  realm <text> }
// `<pass>` may be `htpasswd=<file>` (relative to the site root, read at load time and on every reload).
// OPTIONS is never challenged. A request under a protected path passes when any matching rule accepts its
// credentials; the user becomes `{user}` (and REMOTE_USER for fastcgi). Otherwise 401 with
// `WWW-Authenticate: Basic realm="…"`. As in Caddy, the Authorization header is passed on unchanged.
// Failed logins shut the client's address out for a while (429, throttle.ts); bcrypt runs off the event
// loop, a few checks at a time (503 when too many wait, bcrypt.ts); accepted headers pass again without a
// check for a few minutes (checker.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Middleware } from '../../core/chain.js';
import { defineDirective } from '../../core/directive.js';
import { atLine } from '../../core/setup-args.js';
import { HttpError } from '../../core/errors.js';
import { hideFile } from '../../core/files/hidden.js';
import { compilePathMatcher } from '../../core/pathmatch.js';
import { remoteIp } from '../../core/replacer-values.js';
import { CredentialChecker } from './checker.js';
import { parseHtpasswd, plainCheck, type PasswordCheck } from './htpasswd.js';

interface AuthRule {
  user: string;
  check: PasswordCheck;
  paths: string[];
  realm: string;
}

const FORM = 'basicauth <path> <user> <password> or basicauth <user> <password> { <path>…  realm <text> }';

export const basicauth = defineDirective<AuthRule[]>({
  name: 'basicauth',
  setup(d, ctx) {
    const rules: AuthRule[] = [];
    const files = new Map<string, Map<string, PasswordCheck>>();
    const passwordCheck = (user: string, pass: string): PasswordCheck => {
      if (!pass.startsWith('htpasswd=')) return plainCheck(pass);
      const file = path.resolve(ctx.site.root, pass.slice('htpasswd='.length));
      hideFile(ctx.site, file);
      let users = files.get(file);
      if (!users) {
        const text = atLine(d, () => readFileSync(file, 'utf8'), `open "${file}": `);
        users = atLine(d, () => parseHtpasswd(text), `parsing htpasswd "${file}": `);
        files.set(file, users);
      }
      const check = users.get(user);
      if (!check) throw d.err(`username "${user}" not found in "${file}"`);
      return check;
    };
    while (d.next()) {
      const args = d.remainingArgs();
      const rule: AuthRule = { user: '', check: () => false, paths: [], realm: '' };
      if (args.length === 3) {
        rule.paths.push(args[0]);
        rule.user = args[1];
        rule.check = passwordCheck(args[1], args[2]);
      } else if (args.length === 2) {
        rule.user = args[0];
        rule.check = passwordCheck(args[0], args[1]);
      } else throw d.err(`wrong number of arguments; expected: ${FORM}`);
      let realmSeen = false;
      while (d.nextBlock()) {
        const first = d.val();
        const rest = d.remainingArgs();
        if (rest.length === 0) rule.paths.push(first);
        else if (rest.length === 1 && first === 'realm') {
          if (realmSeen) throw d.err('"realm" subdirective can only be specified once');
          realmSeen = true;
          rule.realm = rest[0];
        } else if (rest.length === 1) throw d.err(`expecting "realm", got "${first}"`);
        else throw d.err(`expected a path or realm <text> in the block; expected: ${FORM}`);
      }
      // Caddy silently protects nothing here; that is never what the author meant.
      if (rule.paths.length === 0)
        throw d.err(`no protected path: add a path on the line or in the block; expected: ${FORM}`);
      rules.push(rule);
    }
    return rules;
  },
  build(rules) {
    const compiled = rules.map((r, index) => ({
      index,
      user: r.user,
      check: r.check,
      matchers: r.paths.map(compilePathMatcher),
      challenge: `Basic realm="${(r.realm || 'Restricted').replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
    }));
    const checker = new CredentialChecker();
    const middleware: Middleware = (next) => async (ctx) => {
      if (ctx.req.method === 'OPTIONS') return next(ctx);
      const matching = compiled.filter((rule) => rule.matchers.some((m) => m(ctx.path)));
      if (matching.length === 0) return next(ctx);
      const header = ctx.req.headers.authorization;
      const creds = parseBasicAuth(header);
      const address = remoteIp(ctx);
      if (creds && header !== undefined) {
        const rule = await checker.accepts(header, creds, matching, address);
        if (rule) {
          ctx.user = creds.user;
          return next(ctx);
        }
      }
      throw new HttpError(
        401,
        `BasicAuth: user "${creds?.user || '-'}" was not found or password was incorrect. ${address} ${ctx.req.headers.host ?? '-'} ${ctx.originalUri}`,
        { headers: { 'WWW-Authenticate': matching[matching.length - 1].challenge } },
      );
    };
    return { middleware };
  },
});

/** Go's Request.BasicAuth: `Basic <base64(user:password)>`, scheme case-insensitive. */
function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || header.length < 6 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const b64 = header.slice(6).trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  const text = Buffer.from(b64, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}
