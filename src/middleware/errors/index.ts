// errors [<logfile>|stdout|stderr|visible] [{ <code> <file>; * <file>; rotate_* }]
//
// Catches what inner middleware throws: an HttpError becomes its page (a file per status, `*` for the rest, or
// the default text), any other throw is logged with its stack to the error log and answered with a 500 page.
// `visible` (for development) puts the error text and stack into the response instead of the log.
import { promises as fs, statSync } from 'node:fs';
import type { HttpResponse } from '../../core/response.js';
import path from 'node:path';
import type { RequestContext } from '../../core/context.js';
import { defineDirective } from '../../core/directive.js';
import { ENTITY_HEADERS, HttpError, writeDefaultError } from '../../core/errors.js';
import {
  defaultRoll,
  hideLogTarget,
  isRollerSubdirective,
  parseRollerLine,
  parseTarget,
  type LogTarget,
  type RollOptions,
} from '../../core/logfile/options.js';
import { acquireLogOutput, type LogOutput } from '../../core/logfile/writer.js';
import { escapeControl } from '../../core/replacer-format.js';
import { closeIfBodyUnread } from '../../core/unread-body.js';

export interface ErrorsOptions {
  /** Absolute page paths by status; 0 is the `*` page. */
  readonly pages: ReadonlyMap<number, string>;
  readonly target: LogTarget;
  readonly roll: RollOptions;
  readonly visible: boolean;
}

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * What to say about an error in the log: nothing for a plain HttpError (a 404 is not a fault). Messages can
 * carry request data, so their control characters are escaped; a stack's own lines (` at …`) stay lines.
 */
function describe(err: unknown): string | undefined {
  if (err instanceof HttpError) {
    if (err.cause === undefined) return undefined;
    const cause = err.cause instanceof Error ? err.cause.message : JSON.stringify(err.cause);
    return escapeControl(`${err.message}: ${cause}`);
  }
  if (err instanceof Error) {
    const head = `${err.name}: ${err.message}`;
    const stack = err.stack ?? head;
    return stack.startsWith(head) ? escapeControl(head) + stack.slice(head.length) : escapeControl(stack);
  }
  return `thrown: ${escapeControl(String(err))}`;
}

export const errors = defineDirective<ErrorsOptions>({
  name: 'errors',
  setup(d, ctx) {
    const pages = new Map<number, string>();
    let target: LogTarget = { kind: 'stderr' };
    const roll = defaultRoll();
    let visible = false;
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 1)
        throw d.err(
          "Only 1 Argument expected for errors directive: 'errors [<logfile>|stdout|stderr|visible]'",
        );
      if (args.length === 1) {
        if (args[0] === 'visible') visible = true;
        else if (/^syslog/i.test(args[0]))
          throw d.err(`errors output '${args[0]}' is not supported: use a file, stdout or stderr`);
        else target = parseTarget(args[0], ctx.cwd);
      }
      while (d.nextBlock()) {
        const what = d.val();
        const where = d.remainingArgs();
        if (isRollerSubdirective(what)) {
          parseRollerLine(d, roll, what, where);
          continue;
        }
        if (where.length !== 1)
          throw d.err(`expected '<status code> <file>' or '* <file>', got '${what} ${where.join(' ')}'`);
        let code: number;
        if (what === '*') code = 0;
        else if (/^\d{3}$/.test(what)) code = Number(what);
        else throw d.err(`Expecting a numeric status code or '*', got '${what}'`);
        if (pages.has(code)) throw d.err(`Duplicate status code entry: ${what}`);
        const file = path.resolve(ctx.site.root, where[0]);
        // As Caddy v1: a page that cannot be read is a warning, the default text is served instead.
        try {
          if (!statSync(file).isFile()) ctx.warn(`Unable to open error page '${file}': not a file`);
        } catch (err) {
          ctx.warn(
            `Unable to open error page '${file}' (${d.file()}:${d.line()}): ${(err as Error).message}`,
          );
        }
        pages.set(code, file);
      }
    }
    hideLogTarget(ctx.site, target);
    return { pages, target, roll, visible };
  },
  build(opts) {
    /** Page bodies by status, read at start. */
    let bodies = new Map<number, Buffer>();
    let output: LogOutput | undefined;

    function logLine(line: string): void {
      output?.write(`${stamp()} ${line}`);
    }

    function sendPage(ctx: RequestContext, status: number, headers: Readonly<Record<string, string>>): void {
      const res = ctx.res;
      const body = bodies.get(status) ?? bodies.get(0);
      if (!body) {
        writeDefaultError(res, status, headers);
        return;
      }
      for (const name of ENTITY_HEADERS) res.removeHeader(name);
      res.statusCode = status;
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      closeIfBodyUnread(res);
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Content-Length', body.length);
      res.end(ctx.req.method === 'HEAD' ? undefined : body);
    }

    function sendVisible(res: HttpResponse, status: number, text: string): void {
      for (const name of ENTITY_HEADERS) res.removeHeader(name);
      res.statusCode = status;
      closeIfBodyUnread(res);
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      const body = `${text}\n`;
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(res.req.method === 'HEAD' ? undefined : body);
    }

    return {
      middleware: (next) => async (ctx) => {
        try {
          await next(ctx);
        } catch (err) {
          const status = err instanceof HttpError ? err.status : 500;
          const headers = err instanceof HttpError ? err.headers : {};
          const detail = describe(err);
          const res = ctx.res;
          if (res.headersSent) {
            // Too late for a page: the client must not take a truncated body for a whole one.
            if (detail)
              logLine(
                `[ERROR ${status} ${escapeControl(ctx.originalPath)}] (after the response had started) ${detail}`,
              );
            res.destroy();
            return;
          }
          if (detail) {
            const message = `[ERROR ${status} ${escapeControl(ctx.originalPath)}] ${detail}`;
            if (opts.visible) {
              sendVisible(res, status, message);
              return;
            }
            logLine(message);
          }
          sendPage(ctx, status, headers);
        }
      },
      async start() {
        output = await acquireLogOutput(opts.target, opts.roll);
        const loaded = new Map<number, Buffer>();
        for (const [code, file] of opts.pages) {
          try {
            loaded.set(code, await fs.readFile(file));
          } catch (err) {
            // Warned at load already; the default text page stands in.
            logLine(`[NOTICE ${code || '*'}] could not load error page: ${(err as Error).message}`);
          }
        }
        bodies = loaded;
      },
      async close() {
        const o = output;
        output = undefined;
        await o?.release();
      },
    };
  },
});
