import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CaddyfileError,
  MAX_ENV_REPLACEMENTS,
  parse,
  replaceEnvVars,
  type ServerBlock,
} from '../../src/caddyfile/index.js';

/** directive -> token texts. */
function texts(b: ServerBlock): Record<string, string[]> {
  return Object.fromEntries([...b.tokens].map(([k, v]) => [k, v.map((t) => t.text)]));
}

const env = { PORT: '8080', ADDRESS: 'servername.com', FOOBAR: 'foobar', PARTIAL_DIR: 'r1', PORT$: '9' };
const keyOf = (input: string) => parse(input, 'Caddyfile', { env }).blocks[0].keys[0];
const argsOf = (input: string) => texts(parse(input, 'Caddyfile', { env }).blocks[0]);

// Ported from Caddy v1's TestEnvironmentReplacement.
test('env: unix-style variable as a key', () => assert.equal(keyOf('{$ADDRESS}'), 'servername.com'));
test('env: partial token', () => assert.equal(keyOf('di{$PARTIAL_DIR}'), 'dir1'));
test('env: several variables in one token', () =>
  assert.equal(keyOf('{$ADDRESS}:{$PORT}'), 'servername.com:8080'));
test('env: windows and unix style in one token', () => {
  assert.equal(keyOf('{%ADDRESS%}:{$PORT}'), 'servername.com:8080');
  assert.equal(keyOf('{$ADDRESS}:{%PORT%}'), 'servername.com:8080');
});
test('env: in a directive argument', () => {
  const b = parse(':{%PORT%}\ndir1 {$FOOBAR}', 'Caddyfile', { env }).blocks[0];
  assert.deepEqual(b.keys, [':8080']);
  assert.deepEqual(texts(b), { dir1: ['dir1', 'foobar'] });
});
test('env: combined windows variables in an argument', () => {
  assert.deepEqual(argsOf(':{%PORT%}\ndir1 {%ADDRESS%}/{%FOOBAR%}'), {
    dir1: ['dir1', 'servername.com/foobar'],
  });
});
test('env: malformed windows reference stays literal', () => {
  assert.deepEqual(argsOf(':1234\ndir1 {%ADDRESS}'), { dir1: ['dir1', '{%ADDRESS}'] });
});
test('env: a name may contain $ ({$PORT$} looks up PORT$)', () => {
  assert.equal(keyOf(':{$PORT$}'), ':9');
  assert.equal(parse(':{$PORT$}', 'Caddyfile', { env: {} }).blocks[0].keys[0], ':');
});
test('env: inside a quoted token', () => {
  assert.deepEqual(argsOf(':1234\ndir1 "Test {$FOOBAR} test"'), { dir1: ['dir1', 'Test foobar test'] });
});
test('env: after an earlier closing brace', () => {
  assert.deepEqual(argsOf(':1234\nanswer "{{ .Name }} {$FOOBAR}"'), {
    answer: ['answer', '{{ .Name }} foobar'],
  });
});

test('env: in directive names, nested blocks, and every occurrence', () => {
  const b = parse('a {\n  {$DIR} {$X} {\n    sub {$X}{$X}\n  }\n}', 'Caddyfile', {
    env: { DIR: 'proxy', X: 'y' },
  }).blocks[0];
  assert.deepEqual(texts(b), { proxy: ['proxy', 'y', '{', 'sub', 'yy', '}'] });
});

test('env: unset variables become empty; an empty key is dropped', () => {
  assert.deepEqual(
    parse('{$NOPE} b', 'Caddyfile', { env: {} }).blocks.map((x) => x.keys),
    [['b']],
  );
  assert.deepEqual(
    parse('{$NOPE}', 'Caddyfile', { env: {} }).blocks.map((x) => x.keys),
    [],
  );
});

test('env: replaceEnvVars scan rules', () => {
  const e = { A: 'a', B: 'b', NESTED: '{$A}', 'A}': 'no' };
  assert.equal(replaceEnvVars('{$}', e), '{$}'); // empty name: literal, scan stops
  assert.equal(replaceEnvVars('{$}{$A}', e), '{$}{$A}'); // ... even with a later reference
  assert.equal(replaceEnvVars('{%%}', e), '{%%}');
  assert.equal(replaceEnvVars('{%}', e), '{%}');
  assert.equal(replaceEnvVars('{$A', e), '{$A'); // no closing brace
  assert.equal(replaceEnvVars('x{$A}y{$B}z{$A}', e), 'xaybza');
  assert.equal(replaceEnvVars('{%A%}{$B}', e), 'ab');
  assert.equal(replaceEnvVars('{$constructor}', e), ''); // not an inherited property
  // QUIRK: the scan restarts after each replacement, so a value holding a reference is expanded too
  assert.equal(replaceEnvVars('{$NESTED}', e), 'a');
});

test('env: a self-referencing variable is an error instead of an endless loop', () => {
  assert.throws(() => replaceEnvVars('{$X}', { X: 'x{$X}' }), /does not terminate/);
  assert.throws(() => replaceEnvVars('{$X}', { X: '{$X}{$X}' }), /does not terminate/);
  // MAX_ENV_REPLACEMENTS distinct references still work
  const many: Record<string, string> = {};
  let text = '';
  for (let i = 0; i < MAX_ENV_REPLACEMENTS; i++) {
    many[`V${i}`] = 'v';
    text += `{$V${i}}`;
  }
  assert.equal(replaceEnvVars(text, many), 'v'.repeat(MAX_ENV_REPLACEMENTS));
  try {
    parse('a {\n  root {$X}\n}', 'Caddyfile', { env: { X: '{$X}' } });
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof CaddyfileError);
    assert.equal(err.line, 2);
    assert.match(
      err.message,
      /^Caddyfile:2 - Error during parsing: Environment variable expansion of '\{\$X\}'/,
    );
  }
});
