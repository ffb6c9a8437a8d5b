import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, didYouMean } from '../../src/caddyfile/index.js';

const directives = [
  'root',
  'index',
  'bind',
  'gzip',
  'header',
  'rewrite',
  'redir',
  'ext',
  'log',
  'errors',
  'proxy',
];

const cases: [string, string | undefined][] = [
  ['gzp', 'gzip'], // one deletion
  ['gzpi', 'gzip'], // one transposition
  ['GZIP', 'gzip'], // case only
  ['heeder', 'header'],
  ['rewrit', 'rewrite'],
  ['proxxy', 'proxy'],
  ['ex', 'ext'],
  ['lgo', 'log'],
  ['frobnicate', undefined],
  ['tls', undefined], // 3 edits from anything
  ['x', undefined], // too short to guess
  ['r', undefined],
];

for (const [name, expected] of cases) {
  test(`suggest: ${name} -> ${String(expected)}`, () => {
    assert.equal(closest(name, directives), expected);
  });
}

test('suggest: ties go to the earlier candidate; the name itself is never suggested', () => {
  assert.equal(closest('redir', ['rewrite', 'redir', 'redirx']), 'redirx');
  assert.equal(closest('ab', ['ac', 'ad']), 'ac');
});

test('suggest: didYouMean text', () => {
  assert.equal(didYouMean('gzp', directives), " (did you mean 'gzip'?)");
  assert.equal(didYouMean('zzzzzz', directives), '');
  assert.equal(didYouMean('gzp', undefined), '');
});
