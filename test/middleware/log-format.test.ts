// log's format at load time: `format json` in the block, and a placeholder that means nothing is an error with
// the file and line of the format (it would otherwise log '-' on every line, unnoticed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadError } from '../helpers/inprocess.js';
import { tempDir } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = tempDir()));
after(() => cleanup?.());

describe('log format', () => {
  const errors: [string, RegExp][] = [
    [
      'log / a.log "{method} {nope}"',
      /^Caddyfile:3 - Error during parsing: unknown placeholder \{nope\} in log format$/,
    ],
    [
      'log a.log {\n\tformat "{common} {mehtod}"\n}',
      /^Caddyfile:4 - .*unknown placeholder \{mehtod\} in log format$/,
    ],
    ['log / a.log "{label0}"', /^Caddyfile:3 - .*unknown placeholder \{label0\}/],
    ['log / a.log "{>}"', /^Caddyfile:3 - .*unknown placeholder \{>\}/],
    ['log a.log {\n\tformat\n}', /^Caddyfile:4 - .*expected 'format json' or 'format <format>'$/],
    ['log / a.log "{uri}" {\n\tformat json\n}', /^Caddyfile:4 - .*the format is given twice/],
  ];
  for (const [body, want] of errors) {
    test(`refused: ${body.replace(/\n\t?/g, ' ')}`, () => {
      assert.match(loadError(`:0\n\n${body}\n`, dir), want);
    });
  }

  const fine = [
    'log a.log {\n\tformat json\n}',
    'log a.log {\n\tformat "{combined} {latency_ms}"\n}',
    'log / a.log "{>X-Test} {<Content-Type} {~session} {?q} {label1} {1} {upstream} {user} {remote} {port}"',
    'log / a.log "{when_iso} {request_id} {tls_protocol} \\{literal\\}"',
  ];
  for (const body of fine) {
    test(`accepted: ${body.replace(/\n\t?/g, ' ')}`, () => {
      assert.equal(loadError(`:0\n\n${body}\n`, dir), '');
    });
  }
});
