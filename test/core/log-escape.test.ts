// Control characters in log lines are shown, never obeyed: the escape helper and the text process log.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatTextLine } from '../../src/core/logger.js';
import { escapeControl } from '../../src/core/replacer-format.js';

test('escapeControl: CR, LF and tab by name, other C0, DEL and C1 controls as \\xHH, the rest untouched', () => {
  assert.equal(escapeControl('plain /path?q=é € \\n'), 'plain /path?q=é € \\n');
  assert.equal(escapeControl('a\r\nb\tc'), 'a\\r\\nb\\tc');
  assert.equal(escapeControl('\x00\x1b[2J\x7f\x9b\xa0'), '\\x00\\x1B[2J\\x7F\\x9B\xa0');
});

test('the text process log shows control characters of a message and of a field as escapes', () => {
  const json = JSON.stringify({
    level: 50,
    time: 0,
    msg: 'upstream failed for /x\r\n2026/01/01 00:00:00 [INFO] forged',
    uri: '/a\x1b[31m',
  });
  const line = formatTextLine(json);
  assert.equal(line.split('\n').length, 2, 'one line and its newline');
  assert.match(line, /\[ERROR\] upstream failed for \/x\\r\\n2026\/01\/01 00:00:00 \[INFO\] forged /);
  assert.match(line, / uri=\/a\\x1B\[31m\n$/);
});
