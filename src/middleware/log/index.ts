// log [<path> <output> [<format>] | <output>] [{ format json|<format>; rotate_*; ipmask v4 [v6]; except <path>… }]
//
// Access log lines are rendered when the response closes (so {status}, {size}, {latency} and {when} are
// final, even for errors rendered further out by the default error page) and handed to a batching writer
// (core/logfile). The client's address and port are captured when the request arrives: the socket may be gone
// by the time the line is rendered.
import type { Dispenser } from '../../caddyfile/index.js';
import type { RequestContext } from '../../core/context.js';
import { defineDirective } from '../../core/directive.js';
import {
  defaultRoll,
  hideLogTarget,
  ROLLER_SUBDIRECTIVES,
  parseRollerLine,
  parseTarget,
  type LogTarget,
  type RollOptions,
} from '../../core/logfile/options.js';
import { acquireLogOutput, type LogOutput } from '../../core/logfile/writer.js';
import { compilePathMatcher } from '../../core/pathmatch.js';
import { compileTemplate, type Template } from '../../core/replacer.js';
import { escapeControl } from '../../core/replacer-format.js';
import { isKnownPlaceholder, remoteIp } from '../../core/replacer-values.js';
import { makeMask, maskIp, parseV4Mask, parseV6Mask, type IpMask } from './ipmask.js';
import { JSON_FORMAT, jsonFormat } from './json.js';

export const COMMON_LOG_FORMAT = '{remote} - {user} [{when}] "{method} {uri} {proto}" {status} {size}';
export const COMBINED_LOG_FORMAT = `${COMMON_LOG_FORMAT} "{>Referer}" "{>User-Agent}"`;

const SUBDIRECTIVES = ['format', 'ipmask', 'except', ...ROLLER_SUBDIRECTIVES];

interface EntryOptions {
  readonly target: LogTarget;
  readonly roll: RollOptions;
  /** A text format with placeholders (unused with json). */
  readonly format: string;
  /** `format json`: one JSON object per line. */
  readonly json: boolean;
  readonly ipMask: IpMask | undefined;
  readonly except: readonly string[];
}

export interface LogRule {
  readonly scope: string;
  readonly entries: EntryOptions[];
}

function expandFormat(format: string): string {
  return format.replaceAll('{common}', COMMON_LOG_FORMAT).replaceAll('{combined}', COMBINED_LOG_FORMAT);
}

/** A typo in a placeholder would log '-' forever: it is an error at the format's line instead. */
function checkPlaceholders(d: Dispenser, format: string): void {
  for (const name of compileTemplate(format).placeholders) {
    if (!isKnownPlaceholder(name)) throw d.err(`unknown placeholder {${name}} in log format`);
  }
}

function parseTargetAt(d: Dispenser, output: string, cwd: string): LogTarget {
  if (/^syslog/i.test(output))
    throw d.err(`log output '${output}' is not supported: use a file, stdout or stderr`);
  return parseTarget(output, cwd);
}

export const log = defineDirective<LogRule[]>({
  name: 'log',
  setup(d, ctx) {
    const rules: LogRule[] = [];
    // Caddy v1 quirk kept: `except` paths accumulate across the log lines of a site block.
    const except: string[] = [];
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 3)
        throw d.err("too many arguments: expected 'log', 'log <output>' or 'log <path> <output> [<format>]'");
      let format = args.length === 3 ? expandFormat(args[2]) : COMMON_LOG_FORMAT;
      let json = false;
      if (args.length === 3) checkPlaceholders(d, format);
      const roll = defaultRoll();
      let ipMask: IpMask | undefined;
      while (d.nextBlock()) {
        const what = d.val();
        if (!SUBDIRECTIVES.includes(what)) throw d.unknownSubdirective(SUBDIRECTIVES);
        const where = d.remainingArgs();
        if (what === 'format') {
          if (where.length !== 1) throw d.err("expected 'format json' or 'format <format>'");
          if (args.length === 3) throw d.err('the format is given twice: on the log line and in its block');
          json = where[0] === JSON_FORMAT;
          if (!json) {
            format = expandFormat(where[0]);
            checkPlaceholders(d, format);
          }
        } else if (what === 'ipmask') {
          if (where.length === 0 || where.length > 2) throw d.err("expected 'ipmask <v4mask> [<v6mask>]'");
          let v4: number[] | undefined;
          let v6: number[] | undefined;
          if (where[0] !== '') {
            v4 = parseV4Mask(where[0]);
            if (!v4) throw d.err(`IPv4 Mask not valid IP Mask Format: '${where[0]}'`);
          }
          if (where.length > 1) {
            v6 = parseV6Mask(where[1]);
            if (!v6) throw d.err(`IPv6 Mask not valid IP Mask Format: '${where[1]}'`);
          }
          if (v4 || v6) ipMask = makeMask(v4, v6);
        } else if (what === 'except') {
          if (where.length === 0) throw d.err("expected 'except <path>…'");
          except.push(...where);
        } else parseRollerLine(d, roll, what, where);
      }
      let scope = '/';
      let output = 'access.log';
      if (args.length === 1) output = args[0];
      else if (args.length >= 2) [scope, output] = args;
      const target = parseTargetAt(d, output, ctx.cwd);
      hideLogTarget(ctx.site, target);
      const entry: EntryOptions = {
        target,
        roll,
        format,
        json,
        ipMask,
        except: [...except],
      };
      const rule = rules.find((r) => r.scope === scope);
      if (rule) rule.entries.push(entry);
      else rules.push({ scope, entries: [entry] });
    }
    return rules;
  },
  build(rules) {
    interface Entry {
      readonly options: EntryOptions;
      readonly template: Pick<Template, 'render'>;
      readonly excepted: ((path: string) => boolean)[];
      output: LogOutput | undefined;
    }
    const compiled = rules.map((r) => ({
      matches: compilePathMatcher(r.scope),
      entries: r.entries.map((e): Entry => ({
        options: e,
        // A decoded `{path}` or `{?q}` may hold CR/LF: escaped, it cannot forge a line.
        template: e.json ? jsonFormat : compileTemplate(e.format, { emptyValue: '-', escape: escapeControl }),
        excepted: e.except.map(compilePathMatcher),
        output: undefined,
      })),
    }));
    const all = compiled.flatMap((r) => r.entries);

    function writeLines(ctx: RequestContext, entries: readonly Entry[], remote: string): void {
      for (const e of entries) {
        if (!e.output) continue;
        if (e.options.ipMask) ctx.vars.set('remote', maskIp(remote, e.options.ipMask));
        e.output.write(e.template.render(ctx));
        if (e.options.ipMask) ctx.vars.set('remote', remote);
      }
    }

    return {
      middleware: (next) => (ctx) => {
        const path = ctx.path;
        const rule = compiled.find((r) => r.matches(path));
        if (!rule) return next(ctx);
        const entries = rule.entries.filter((e) => !e.excepted.some((m) => m(path)));
        if (entries.length === 0) return next(ctx);
        // The connection's values, while the socket is surely there.
        const remote = ctx.vars.get('remote') ?? remoteIp(ctx);
        ctx.vars.set('remote', remote);
        if (!ctx.vars.has('port')) ctx.vars.set('port', String(ctx.req.socket.remotePort ?? ''));
        ctx.res.once('close', () => writeLines(ctx, entries, remote));
        return next(ctx);
      },
      async start() {
        try {
          for (const e of all) e.output = await acquireLogOutput(e.options.target, e.options.roll);
        } catch (err) {
          await this.close!();
          throw err;
        }
      },
      async close() {
        const outputs = all.map((e) => e.output);
        for (const e of all) e.output = undefined;
        await Promise.all(outputs.map(async (o) => o?.release()));
      },
    };
  },
});
