import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEnvFile } from '../../src/cli/envfile.js';
import { FlagError, parseFlags, type FlagSpec } from '../../src/cli/flags.js';

const specs: FlagSpec[] = [
  { name: 'conf', type: 'string', default: '', usage: '' },
  { name: 'port', type: 'string', default: '2015', usage: '' },
  { name: 'quiet', type: 'bool', default: 'false', usage: '' },
];

describe('parseFlags (Go flag semantics)', () => {
  test('-name value, -name=value, --name, booleans', () => {
    const f = parseFlags(specs, ['-conf', 'a', '--port=80', '-quiet', 'browse', '-x']);
    assert.equal(f.values.get('conf'), 'a');
    assert.equal(f.values.get('port'), '80');
    assert.equal(f.values.get('quiet'), 'true');
    assert.deepEqual(f.positional, ['browse', '-x']);
    assert.deepEqual([...f.set].sort(), ['conf', 'port', 'quiet']);
  });
  test('defaults and -bool=false', () => {
    const f = parseFlags(specs, ['-quiet=false']);
    assert.equal(f.values.get('port'), '2015');
    assert.equal(f.values.get('quiet'), 'false');
  });
  test('-- ends flags', () => assert.deepEqual(parseFlags(specs, ['--', '-quiet']).positional, ['-quiet']));
  test('errors', () => {
    assert.throws(() => parseFlags(specs, ['-nope']), /flag provided but not defined: -nope/);
    assert.throws(() => parseFlags(specs, ['-conf']), /flag needs an argument: -conf/);
    assert.throws(() => parseFlags(specs, ['-quiet=maybe']), /invalid boolean value/);
    assert.throws(
      () => parseFlags(specs, ['-h']),
      (e: unknown) => e instanceof FlagError && e.help,
    );
  });
});

describe('parseEnvFile (Caddy v1 -envfile rules)', () => {
  test('parses, trims, skips blanks and comments, splits at the first =', () => {
    const vars = parseEnvFile('# c\n\n  A=1 \nB=x=y\r\nC=\n');
    assert.deepEqual(
      [...vars],
      [
        ['A', '1'],
        ['B', 'x=y'],
        ['C', ''],
      ],
    );
  });
  test('errors name the line', () => {
    assert.throws(() => parseEnvFile('A=1\nnope'), /Can't parse line 2; line should be in KEY=VALUE format/);
    assert.throws(() => parseEnvFile('=v'), /Can't parse line 1; key should not be empty/);
    assert.throws(() => parseEnvFile('A B=v'), /Can't parse line 1; key should not contain whitespace/);
  });
});
