// limits <size> | limits { header <size>  body [<path>] <size> }
// Sizes: an integer with an optional unit B, KB, MB, GB (powers of 1024). `limits <size>` sets both the
// header limit and the body limit for `/`.
// - Header: the listener accepts the largest limit of its sites (core/listener-settings.ts); this site's own
//   limit is checked here after routing: over it → 431.
// - Body: the longest matching path sets ctx.maxBodyBytes, which core/body.ts requestBody() enforces for the
//   directives that read bodies (413); the file server refuses a declared Content-Length over it too. Both
//   happen inside `errors` and `log`, so the 413 gets the site's page and an access log line.
import type { IncomingMessage } from 'node:http';
import type { Middleware } from '../core/chain.js';
import { defineDirective } from '../core/directive.js';
import { HttpError } from '../core/errors.js';
import { compilePathMatcher } from '../core/pathmatch.js';

interface LimitsOptions {
  header: number | undefined;
  body: { path: string; size: number }[];
}

const FORM = 'limits <size> or limits { header <size>  body [<path>] <size> }';
const UNITS: Record<string, number> = { '': 1, B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** `10MB` → bytes; undefined when it is not a positive size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([a-zA-Z]*)$/.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[2].toUpperCase()];
  const n = Number(m[1]) * (unit ?? NaN);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export const limits = defineDirective<LimitsOptions>({
  name: 'limits',
  setup(d, ctx) {
    const opts: LimitsOptions = { header: undefined, body: [] };
    const size = (text: string) => {
      const n = parseSize(text);
      if (n === undefined)
        throw d.err(`invalid size '${text}' (a positive integer with optional B, KB, MB or GB)`);
      return n;
    };
    const setBody = (p: string, n: number) => {
      const path = p.startsWith('/') ? p : `/${p}`;
      // A repeated path replaces the earlier limit.
      opts.body = opts.body.filter((b) => b.path !== path);
      opts.body.push({ path, size: n });
    };
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 1) throw d.err(`too many arguments; expected: ${FORM}`);
      if (args.length === 1) {
        const n = size(args[0]);
        opts.header = n;
        setBody('/', n);
      }
      let lines = 0;
      while (d.nextBlock()) {
        lines++;
        const key = d.val();
        if (key !== 'header' && key !== 'body') throw d.unknownSubdirective(['header', 'body']);
        const values = d.remainingArgs();
        if (key === 'header') {
          if (values.length !== 1) throw d.err('expected: header <size>');
          opts.header = size(values[0]);
        } else if (values.length === 1) setBody('/', size(values[0]));
        else if (values.length === 2) setBody(values[0], size(values[1]));
        else throw d.err('expected: body [<path>] <size>');
      }
      if (args.length === 0 && lines === 0) throw d.err(`missing size; expected: ${FORM}`);
    }
    if (opts.header !== undefined) ctx.site.maxHeaderBytes = opts.header;
    return opts;
  },
  build(opts) {
    const bodies = [...opts.body]
      .sort((a, b) => b.path.length - a.path.length)
      .map((b) => ({ size: b.size, matches: compilePathMatcher(b.path) }));
    const headerLimit = opts.header;
    const middleware: Middleware = (next) => async (ctx) => {
      if (headerLimit !== undefined && headBytes(ctx.req) > headerLimit)
        throw new HttpError(431, 'request header fields too large', { headers: { Connection: 'close' } });
      for (const b of bodies) {
        if (!b.matches(ctx.path)) continue;
        // Enforced where the body would be read or ignored (core/body.ts), inside errors and log.
        ctx.maxBodyBytes = b.size;
        break;
      }
      return next(ctx);
    };
    return { middleware };
  },
});

/** The request head as Node's parser counts it against maxHeaderSize: the target, header names and values. */
function headBytes(req: IncomingMessage): number {
  let n = Buffer.byteLength(req.url ?? '');
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i++) n += Buffer.byteLength(raw[i]);
  return n;
}
