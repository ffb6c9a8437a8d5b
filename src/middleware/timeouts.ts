// timeouts <duration|none> | timeouts { read|header|write|idle <duration|none> }
// Go durations (`10s`, `1m30s`); `none` (or 0) disables one. Config only: the listener applies them, and
// several sites on one listener combine as core/listener-settings.ts explains (the smallest wins).
import { defineDirective } from '../core/directive.js';
import { durationArg } from '../core/setup-args.js';
import type { TimeoutKind } from '../core/site.js';

const KINDS: readonly TimeoutKind[] = ['read', 'header', 'write', 'idle'];
const FORM = 'timeouts <duration|none> or timeouts { read|header|write|idle <duration|none> }';

export const timeouts = defineDirective<Partial<Record<TimeoutKind, number>>>({
  name: 'timeouts',
  setup(d, ctx) {
    const set: Partial<Record<TimeoutKind, number>> = {};
    const duration = (text: string) => {
      if (text === 'none') return 0;
      const ms = durationArg(d, text);
      // A non-zero value below a millisecond would become 0 (none) in Node: round it up instead.
      return ms > 0 ? Math.max(1, Math.round(ms)) : 0;
    };
    while (d.next()) {
      const args = d.remainingArgs();
      if (args.length > 1) throw d.err(`too many arguments; expected: ${FORM}`);
      if (args.length === 1) {
        const v = duration(args[0]);
        for (const k of KINDS) set[k] = v;
      }
      let lines = 0;
      while (d.nextBlock()) {
        lines++;
        const key = d.val();
        if (!(KINDS as readonly string[]).includes(key))
          throw d.err(`unknown timeout '${key}': must be read, header, write, or idle`);
        const values = d.remainingArgs();
        if (values.length !== 1) throw d.err(`expected: ${key} <duration|none>`);
        set[key as TimeoutKind] = duration(values[0]);
      }
      if (args.length === 0 && lines === 0) throw d.err(`missing duration; expected: ${FORM}`);
    }
    ctx.site.timeouts = { ...ctx.site.timeouts, ...set };
    return set;
  },
});
