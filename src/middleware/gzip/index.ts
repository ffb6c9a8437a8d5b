// gzip [{ ext …; not …; level n; min_length n }]: compresses responses with gzip, brotli or zstd, whichever the
// client's Accept-Encoding prefers (core/encoding.ts). Several `gzip` lines make several configs; the first
// whose request filters pass is used.
import { compilePathMatcher } from '../../core/pathmatch.js';
import { defineDirective } from '../../core/directive.js';
import { negotiateEncoding } from '../../core/encoding.js';
import { addResponseFilter } from '../../core/response.js';
import { AVAILABLE_CODINGS } from './codecs.js';
import { CompressFilter, type CompressSettings } from './compressor.js';

/** Caddy v1's default extensions (`""` = no extension). */
export const DEFAULT_EXTENSIONS = [
  '',
  '.txt',
  '.htm',
  '.html',
  '.css',
  '.php',
  '.js',
  '.json',
  '.md',
  '.mdown',
  '.xml',
  '.svg',
  '.go',
  '.cgi',
  '.py',
  '.pl',
  '.aspx',
  '.asp',
  '.m3u',
  '.m3u8',
  '.wasm',
];

const DEFAULT_LEVEL = 6;
const SUBDIRECTIVES = ['ext', 'not', 'level', 'min_length'];

export interface GzipConfig extends CompressSettings {
  /** Extensions compressed; `*` = all. */
  readonly extensions: readonly string[];
  /** Path prefixes never compressed. */
  readonly not: readonly string[];
}

/** Go's path.Ext: from the last dot of the last segment, or ''. */
function extOf(p: string): string {
  for (let i = p.length - 1; i >= 0; i--) {
    const c = p.charCodeAt(i);
    if (c === 0x2f /* / */) return '';
    if (c === 0x2e /* . */) return p.slice(i);
  }
  return '';
}

export const gzip = defineDirective<GzipConfig[]>({
  name: 'gzip',
  setup(d, ctx) {
    const configs: GzipConfig[] = [];
    while (d.next()) {
      if (d.remainingArgs().length > 0) throw d.err("gzip takes no arguments: expected 'gzip [{ … }]'");
      const extensions: string[] = [];
      const not: string[] = [];
      let level = DEFAULT_LEVEL;
      let minLength = 0;
      while (d.nextBlock()) {
        const what = d.val();
        if (!SUBDIRECTIVES.includes(what)) throw d.unknownSubdirective(SUBDIRECTIVES);
        const args = d.remainingArgs();
        switch (what) {
          case 'ext':
            if (args.length === 0) throw d.err('expected \'ext <.ext|*|"">…\'');
            for (const e of args) {
              if (!e.startsWith('.') && e !== '*' && e !== '')
                throw d.err(`gzip: invalid extension "${e}" (must start with dot)`);
              extensions.push(e);
            }
            break;
          case 'not':
            if (args.length === 0) throw d.err("expected 'not <path>…'");
            for (const p of args) {
              if (p === '/') throw d.err('gzip: cannot exclude path "/" - remove directive entirely instead');
              if (!p.startsWith('/')) throw d.err(`gzip: invalid path "${p}" (must start with /)`);
              not.push(p);
            }
            break;
          case 'level': {
            if (args.length !== 1) throw d.err("expected 'level <1-9>'");
            // Caddy v1: a value it cannot use silently means the default. We say so.
            const n = /^\d+$/.test(args[0]) ? Number(args[0]) : NaN;
            if (n >= 1 && n <= 9) level = n;
            else {
              ctx.warn(
                `gzip level '${args[0]}' is not 1-9; using ${DEFAULT_LEVEL} (${d.file()}:${d.line()})`,
              );
              level = DEFAULT_LEVEL;
            }
            break;
          }
          case 'min_length': {
            if (args.length !== 1) throw d.err("expected 'min_length <bytes>'");
            const n = /^\d+$/.test(args[0]) ? Number(args[0]) : NaN;
            if (!Number.isSafeInteger(n))
              throw d.err(`gzip: min_length must be a whole number of bytes, got '${args[0]}'`);
            if (n === 0) throw d.err('gzip: min_length must be greater than 0');
            minLength = n;
            break;
          }
        }
      }
      configs.push({
        extensions: extensions.length ? extensions : DEFAULT_EXTENSIONS,
        not,
        level,
        minLength,
      });
    }
    return configs;
  },
  build(configs) {
    const compiled = configs.map((c) => ({
      settings: { level: c.level, minLength: c.minLength },
      anyExt: c.extensions.includes('*'),
      extensions: new Set(c.extensions),
      excluded: c.not.map(compilePathMatcher),
    }));
    return {
      middleware: (next) => async (ctx) => {
        const coding = negotiateEncoding(ctx.req.headers['accept-encoding'], AVAILABLE_CODINGS);
        if (coding) {
          const path = ctx.path;
          for (const c of compiled) {
            if (c.excluded.some((m) => m(path))) continue;
            if (!c.anyExt && !c.extensions.has(extOf(path))) continue;
            addResponseFilter(ctx.res, new CompressFilter(ctx.res, coding, c.settings));
            break;
          }
        }
        return next(ctx);
      },
    };
  },
});
