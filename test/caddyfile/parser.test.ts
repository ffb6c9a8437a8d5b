import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CaddyfileError, parse, type ServerBlock } from '../../src/caddyfile/index.js';

/** keys plus directive -> token count, in Map order (like Caddy's parse_test tables). */
function summary(b: ServerBlock): { keys: string[]; counts: [string, number][] } {
  return { keys: b.keys, counts: [...b.tokens].map(([k, v]) => [k, v.length]) };
}

/** directive -> token texts. */
function texts(b: ServerBlock): Record<string, string[]> {
  return Object.fromEntries([...b.tokens].map(([k, v]) => [k, v.map((t) => t.text)]));
}

const env = {};
const p = (input: string, directives?: readonly string[]) => parse(input, 'Caddyfile', { env, directives });

// Ported from Caddy v1's TestParseOneAndImport (the cases that need no files): first block's keys and token counts.
const oneBlock: { input: string; keys: string[]; counts: [string, number][] }[] = [
  { input: 'localhost', keys: ['localhost'], counts: [] },
  { input: 'localhost\n  dir1', keys: ['localhost'], counts: [['dir1', 1]] },
  { input: 'localhost:1234\n  dir1 foo bar', keys: ['localhost:1234'], counts: [['dir1', 3]] },
  { input: 'localhost {\n    dir1\n  }', keys: ['localhost'], counts: [['dir1', 1]] },
  {
    input: 'localhost:1234 {\n    dir1 foo bar\n    dir2\n  }',
    keys: ['localhost:1234'],
    counts: [
      ['dir1', 3],
      ['dir2', 1],
    ],
  },
  {
    input: 'http://localhost https://localhost\n  dir1 foo bar',
    keys: ['http://localhost', 'https://localhost'],
    counts: [['dir1', 3]],
  },
  {
    input: 'http://localhost https://localhost {\n    dir1 foo bar\n  }',
    keys: ['http://localhost', 'https://localhost'],
    counts: [['dir1', 3]],
  },
  {
    input: 'http://localhost, https://localhost {\n    dir1 foo bar\n  }',
    keys: ['http://localhost', 'https://localhost'],
    counts: [['dir1', 3]],
  },
  {
    input: 'host1:80, http://host2.com\n  dir1 foo bar\n  dir2 baz',
    keys: ['host1:80', 'http://host2.com'],
    counts: [
      ['dir1', 3],
      ['dir2', 2],
    ],
  },
  {
    input: 'http://host1.com,\n  http://host2.com,\n  https://host3.com',
    keys: ['http://host1.com', 'http://host2.com', 'https://host3.com'],
    counts: [],
  },
  {
    input: 'http://host1.com:1234, https://host2.com\n  dir1 foo {\n    bar baz\n  }\n  dir2',
    keys: ['http://host1.com:1234', 'https://host2.com'],
    counts: [
      ['dir1', 6],
      ['dir2', 1],
    ],
  },
  {
    input: '127.0.0.1\n  dir1 {\n    bar baz\n  }\n  dir2 {\n    foo bar\n  }',
    keys: ['127.0.0.1'],
    counts: [
      ['dir1', 5],
      ['dir2', 5],
    ],
  },
  { input: 'localhost\n  dir1 {\n  }', keys: ['localhost'], counts: [['dir1', 3]] },
  {
    input: 'localhost\n  dir1 {\n    nested {\n      foo\n    }\n  }\n  dir2 foo bar',
    keys: ['localhost'],
    counts: [
      ['dir1', 7],
      ['dir2', 3],
    ],
  },
];

for (const [i, c] of oneBlock.entries()) {
  test(`parser: Caddy parse-one case ${i}: ${JSON.stringify(c.input.split('\n')[0])}`, () => {
    const { blocks } = p(c.input);
    assert.equal(blocks.length, 1);
    assert.deepEqual(summary(blocks[0]), { keys: c.keys, counts: c.counts });
  });
}

// Ported from Caddy v1's TestParseAll (cases without files).
const allBlocks: { input: string; keys: string[][] }[] = [
  { input: 'localhost', keys: [['localhost']] },
  { input: 'localhost:1234', keys: [['localhost:1234']] },
  { input: 'localhost:1234 {\n  }\n  localhost:2015 {\n  }', keys: [['localhost:1234'], ['localhost:2015']] },
  { input: 'localhost:1234, http://host2', keys: [['localhost:1234', 'http://host2']] },
  {
    input: 'http://host1.com, http://host2.com {\n  }\n  https://host3.com, https://host4.com {\n  }',
    keys: [
      ['http://host1.com', 'http://host2.com'],
      ['https://host3.com', 'https://host4.com'],
    ],
  },
  { input: '', keys: [] },
  { input: '""', keys: [] },
  { input: '"" localhost', keys: [['localhost']] },
  // QUIRK: `{}` is one token, so it is a second address
  { input: 'localhost {}', keys: [['localhost', '{}']] },
  // QUIRK: a lone comma gives an empty key
  { input: 'a , b', keys: [['a', '', 'b']] },
  { input: 'a,b', keys: [['a,b']] },
  { input: 'localhost\n{\n}', keys: [['localhost']] },
  // QUIRK: `(name)` alone at EOF is not a snippet but a block
  { input: '(name)', keys: [['(name)']] },
];

for (const [i, c] of allBlocks.entries()) {
  test(`parser: Caddy parse-all case ${i}: ${JSON.stringify(c.input)}`, () => {
    assert.deepEqual(
      p(c.input).blocks.map((b) => b.keys),
      c.keys,
    );
  });
}

test('parser: tokens of a directive are concatenated in file order, Map in order of first appearance', () => {
  const { blocks } = p('a {\n  dir2 x\n  dir1 y\n  dir2 z {\n    q\n  }\n}');
  const b = blocks[0];
  assert.deepEqual([...b.tokens.keys()], ['dir2', 'dir1']);
  assert.deepEqual(
    b.tokens.get('dir2')!.map((t) => [t.text, t.line, t.file]),
    [
      ['dir2', 2, 'Caddyfile'],
      ['x', 2, 'Caddyfile'],
      ['dir2', 4, 'Caddyfile'],
      ['z', 4, 'Caddyfile'],
      ['{', 4, 'Caddyfile'],
      ['q', 5, 'Caddyfile'],
      ['}', 6, 'Caddyfile'],
    ],
  );
});

test('parser: keyTokens give each key with its line', () => {
  const b = p('a,\n  b c, {$NOPE}d {\n}').blocks[0];
  assert.deepEqual(b.keys, ['a', 'b', 'c', 'd']);
  assert.deepEqual(
    b.keyTokens.map((t) => [t.text, t.file, t.line]),
    [
      ['a', 'Caddyfile', 1],
      ['b', 'Caddyfile', 2],
      ['c', 'Caddyfile', 2],
      ['d', 'Caddyfile', 2],
    ],
  );
});

test('parser: several blocks, brace on the next line, quoted keys', () => {
  const { blocks } = p('one.com\n{\n  root /a\n}\n"two.com" three.com {\n  root /b\n  gzip\n}\n');
  assert.deepEqual(
    blocks.map((b) => [b.keys, texts(b)]),
    [
      [['one.com'], { root: ['root', '/a'] }],
      [['two.com', 'three.com'], { root: ['root', '/b'], gzip: ['gzip'] }],
    ],
  );
});

test('parser: QUIRK a `{` first on the next line still belongs to the directive', () => {
  const b = p('a {\n  gzip\n  {\n    ext .html\n  }\n  root /x\n}').blocks[0];
  assert.deepEqual(texts(b), { gzip: ['gzip', '{', 'ext', '.html', '}'], root: ['root', '/x'] });
});

test('parser: a block may open mid-line and close mid-line', () => {
  const b = p('a {\n  proxy / b { x\n  y } z\n  root /\n}').blocks[0];
  assert.deepEqual(texts(b), { proxy: ['proxy', '/', 'b', '{', 'x', 'y', '}', 'z'], root: ['root', '/'] });
});

test('parser: the unbraced form ends at a `}` that starts a line; what follows is another block', () => {
  const { blocks } = p('a\ngzip\n}\nb {\n  root /\n}');
  assert.deepEqual(
    blocks.map((b) => [b.keys, texts(b)]),
    [
      [['a'], { gzip: ['gzip'] }],
      [['b'], { root: ['root', '/'] }],
    ],
  );
});

test('parser: CRLF line endings', () => {
  const b = p('a.test {\r\n  root /x\r\n  gzip\r\n}\r\n').blocks[0];
  assert.deepEqual(texts(b), { root: ['root', '/x'], gzip: ['gzip'] });
  assert.deepEqual(
    b.tokens.get('gzip')?.map((t) => t.line),
    [3],
  );
});

test('parser: a key that expands to a trailing comma expects another address', () => {
  const { blocks } = parse('{$A}\nb {\n}', 'Caddyfile', { env: { A: 'a,' } });
  assert.deepEqual(
    blocks.map((b) => b.keys),
    [['a', 'b']],
  );
});

test('parser: `import` that is not first on a line is a plain argument', () => {
  const b = p('a {\n  basicauth / import password\n}').blocks[0];
  assert.deepEqual(texts(b), { basicauth: ['basicauth', '/', 'import', 'password'] });
});

test('parser: directive names are checked against the list, any name when no list', () => {
  assert.deepEqual(texts(p('a {\n  whatever 1\n}').blocks[0]), { whatever: ['whatever', '1'] });
  assert.deepEqual(texts(p('a {\n  gzip\n}', ['gzip']).blocks[0]), { gzip: ['gzip'] });
});

test('parser: default env is process.env', () => {
  process.env.NODECADDY_TEST_PARSER_HOST = 'fromenv.test';
  try {
    assert.deepEqual(parse('{$NODECADDY_TEST_PARSER_HOST}', 'Caddyfile').blocks[0].keys, ['fromenv.test']);
  } finally {
    delete process.env.NODECADDY_TEST_PARSER_HOST;
  }
});

/** The exact message of the error `input` throws. */
function errorOf(input: string, directives?: readonly string[]): string {
  try {
    p(input, directives);
  } catch (e) {
    assert.ok(e instanceof CaddyfileError, `not a CaddyfileError: ${String(e)}`);
    return e.message;
  }
  assert.fail('expected an error');
}

const errors: { name: string; input: string; directives?: readonly string[]; message: string }[] = [
  {
    name: 'comma before brace',
    input: 'http://localhost, {\n  }',
    message:
      "Caddyfile:1 - Error during parsing: Expected another address but had '{' - check for extra comma",
  },
  {
    name: 'trailing comma at EOF',
    input: 'localhost:1234, http://host2,',
    message: 'Caddyfile:1 - Error during parsing: Unexpected EOF',
  },
  {
    name: 'unclosed directive block',
    input: 'localhost\n  dir1 {\n    foo',
    message: 'Caddyfile:3 - Error during parsing: Unexpected EOF',
  },
  {
    name: 'closing brace without opening',
    input: 'localhost\n  dir1 {\n  } }',
    message: "Caddyfile:3 - Error during parsing: Unexpected '}' because no matching opening brace",
  },
  {
    name: 'closing brace mid-line at nesting 0',
    input: 'a {\n  root /\n\n\n\n\n  gzip }\n}',
    message: "Caddyfile:7 - Error during parsing: Unexpected '}' because no matching opening brace",
  },
  {
    name: 'braced block without its closing brace',
    input: 'localhost {\n  gzip',
    message: "Caddyfile:2 - Syntax error: Unexpected token 'gzip', expecting '}'",
  },
  {
    name: 'unknown directive with a suggestion',
    input: 'localhost {\n  root /\n  gzp\n}',
    directives: ['root', 'gzip', 'log'],
    message: "Caddyfile:3 - Error during parsing: Unknown directive 'gzp' (did you mean 'gzip'?)",
  },
  {
    name: 'unknown directive without a close name',
    input: 'localhost {\n  frobnicate on\n}',
    directives: ['root', 'gzip', 'log'],
    message: "Caddyfile:2 - Error during parsing: Unknown directive 'frobnicate'",
  },
  {
    name: 'unbraced form: a second address line is an unknown directive',
    input: 'a.com\nroot /\nb.com',
    directives: ['root'],
    message: "Caddyfile:3 - Error during parsing: Unknown directive 'b.com'",
  },
  {
    name: 'snippet without braces',
    input: '(snip)\nfoo',
    message: "Caddyfile:2 - Syntax error: Unexpected token 'foo', expecting '{'",
  },
  {
    name: 'snippet with unbalanced braces',
    input: '(snip) {\n  a {\n}',
    message: "Caddyfile:3 - Syntax error: Unexpected token '}', expecting '}'",
  },
  {
    name: 'snippet redeclared',
    input: '(s) {\n  a\n}\n(s) {\n  b\n}',
    message: 'Caddyfile:4 - Error during parsing: redeclaration of previously declared snippet s',
  },
  {
    name: 'import without argument',
    input: 'import',
    message:
      "Caddyfile:1 - Error during parsing: Wrong argument count or unexpected line ending after 'import'",
  },
  {
    name: 'import with two arguments',
    input: 'a {\n  import x y\n}',
    message: 'Caddyfile:2 - Error during parsing: Import takes only one argument (glob pattern or file)',
  },
  {
    name: 'import of an empty name',
    input: 'import {$NOT_SET_ANYWHERE}',
    message: 'Caddyfile:1 - Error during parsing: Import requires a non-empty filepath',
  },
  {
    name: 'import {$$} (fuzz case)',
    input: 'import {$$}',
    message: 'Caddyfile:1 - Error during parsing: Import requires a non-empty filepath',
  },
  {
    name: 'import with two * (fuzz case)',
    input: 'import /*/*.txt',
    message:
      'Caddyfile:1 - Error during parsing: Glob pattern may only contain one wildcard (*), but has others: /*/*.txt',
  },
  {
    name: 'import with several ? (fuzz case)',
    input: 'import /???/?*?o',
    message:
      'Caddyfile:1 - Error during parsing: Glob pattern may only contain one wildcard (*), but has others: /???/?*?o',
  },
  {
    name: 'import with a character class (fuzz case)',
    input: '\nimport /[a-z]',
    message:
      'Caddyfile:2 - Error during parsing: Glob pattern may only contain one wildcard (*), but has others: /[a-z]',
  },
  {
    name: 'import of a missing absolute file',
    input: 'import /nonexistent-nodecaddy/file.conf',
    message: 'Caddyfile:1 - Error during parsing: File to import not found: /nonexistent-nodecaddy/file.conf',
  },
  {
    name: 'unexpected `{` as import argument in a block',
    input: 'a {\n  proxy {\n    import\n  }\n}',
    message:
      "Caddyfile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'import'",
  },
];

for (const c of errors) {
  test(`parser error: ${c.name}`, () => {
    assert.equal(errorOf(c.input, c.directives), c.message);
  });
}

test('parser error: CaddyfileError carries file and line', () => {
  try {
    parse('a {\n  b {\n', 'conf/Site', { env });
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof CaddyfileError);
    assert.equal(e.file, 'conf/Site');
    assert.equal(e.line, 2);
    assert.equal(e.detail, 'Unexpected EOF');
    assert.equal(e.message, 'conf/Site:2 - Error during parsing: Unexpected EOF');
  }
});
