import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenize } from '../../src/caddyfile/index.js';

/** [text, line] pairs of the tokens of `input`. */
function lex(input: string): [string, number][] {
  return tokenize(input, 'Caddyfile').map((t) => [t.text, t.line]);
}

// Ported from Caddy v1's caddyfile/lexer_test.go, plus the quirks of section 2.1.
const cases: { name: string; input: string; expected: [string, number][] }[] = [
  { name: 'single token', input: 'host:123', expected: [['host:123', 1]] },
  {
    name: 'blank line between tokens',
    input: 'host:123\n\n\t\t\t\t\tdirective',
    expected: [
      ['host:123', 1],
      ['directive', 3],
    ],
  },
  {
    name: 'braces on their own',
    input: 'host:123 {\n\t\t\t\t\t\tdirective\n\t\t\t\t\t}',
    expected: [
      ['host:123', 1],
      ['{', 1],
      ['directive', 2],
      ['}', 3],
    ],
  },
  {
    name: 'block on one line',
    input: 'host:123 { directive }',
    expected: [
      ['host:123', 1],
      ['{', 1],
      ['directive', 1],
      ['}', 1],
    ],
  },
  {
    name: 'comments',
    input: 'host:123 {\n#comment\ndirective\n# comment\nfoobar # another comment\n}',
    expected: [
      ['host:123', 1],
      ['{', 1],
      ['directive', 3],
      ['foobar', 5],
      ['}', 6],
    ],
  },
  {
    name: 'quoted value',
    input: 'a "quoted value" b\n\t\t\t\t\tfoobar',
    expected: [
      ['a', 1],
      ['quoted value', 1],
      ['b', 1],
      ['foobar', 2],
    ],
  },
  {
    name: 'escaped quotes',
    input: 'A "quoted \\"value\\" inside" B',
    expected: [
      ['A', 1],
      ['quoted "value" inside', 1],
      ['B', 1],
    ],
  },
  { name: 'other escapes keep the backslash', input: '"don\'t\\escape"', expected: [["don't\\escape", 1]] },
  { name: 'double backslash is kept', input: '"don\'t\\\\escape"', expected: [["don't\\\\escape", 1]] },
  {
    name: 'newline inside quotes',
    input: 'A "quoted value with line\n\t\t\t\t\tbreak inside" {\n\t\t\t\t\t\tfoobar\n\t\t\t\t\t}',
    expected: [
      ['A', 1],
      ['quoted value with line\n\t\t\t\t\tbreak inside', 1],
      ['{', 2],
      ['foobar', 3],
      ['}', 4],
    ],
  },
  { name: 'windows path', input: '"C:\\php\\php-cgi.exe"', expected: [['C:\\php\\php-cgi.exe', 1]] },
  {
    name: 'empty quoted string',
    input: 'empty "" string',
    expected: [
      ['empty', 1],
      ['', 1],
      ['string', 1],
    ],
  },
  {
    name: 'CRLF',
    input: 'skip those\r\nCR characters',
    expected: [
      ['skip', 1],
      ['those', 1],
      ['CR', 2],
      ['characters', 2],
    ],
  },
  { name: 'leading BOM', input: '\ufeff:8080', expected: [[':8080', 1]] },
  // Quirks (section 2.1)
  { name: 'QUIRK: \\r does not end a token', input: 'ab\rcd', expected: [['abcd', 1]] },
  {
    name: 'QUIRK: # starts a comment mid-word',
    input: 'foo#bar baz\nnext',
    expected: [
      ['foo', 1],
      ['next', 2],
    ],
  },
  { name: 'a#b c is a', input: 'a#b c', expected: [['a', 1]] },
  { name: '# inside quotes is literal', input: '"a # b"', expected: [['a # b', 1]] },
  {
    name: 'a quoted token ends at its closing quote',
    input: '"a"b',
    expected: [
      ['a', 1],
      ['b', 1],
    ],
  },
  {
    name: 'quotes inside a word are literal',
    input: 'a"b c"',
    expected: [
      ['a"b', 1],
      ['c"', 1],
    ],
  },
  { name: 'backslash outside quotes is ordinary', input: 'a\\"b', expected: [['a\\"b', 1]] },
  {
    name: 'backslash before a newline inside quotes',
    input: '"a\\\nb" c',
    expected: [
      ['a\\\nb', 1],
      ['c', 2],
    ],
  },
  { name: 'unterminated quote runs to EOF', input: '"abc def\nghi', expected: [['abc def\nghi', 1]] },
  { name: 'a lone quote at EOF is no token', input: 'x "', expected: [['x', 1]] },
  {
    name: 'braces are ordinary text unless alone',
    input: 'foo{ {} }bar',
    expected: [
      ['foo{', 1],
      ['{}', 1],
      ['}bar', 1],
    ],
  },
  {
    name: 'unicode whitespace separates tokens',
    input: 'a\u00a0b\u2003c\u3000d\u0085e\u000bf\u000cg',
    expected: [
      ['a', 1],
      ['b', 1],
      ['c', 1],
      ['d', 1],
      ['e', 1],
      ['f', 1],
      ['g', 1],
    ],
  },
  { name: 'only the first BOM is dropped', input: '\ufeff\ufeffx', expected: [['\ufeffx', 1]] },
  { name: 'empty input', input: '', expected: [] },
  { name: 'only comments', input: '# a\n  # b\n', expected: [] },
  {
    name: 'quoted token line is where the quote opened',
    input: '\n\n  "x\ny\nz" w',
    expected: [
      ['x\ny\nz', 3],
      ['w', 5],
    ],
  },
  { name: '\\r inside quotes is kept', input: '"a\r\nb"', expected: [['a\r\nb', 1]] },
];

for (const c of cases) {
  test(`lexer: ${c.name}`, () => {
    assert.deepEqual(lex(c.input), c.expected);
  });
}

test('lexer: tokens carry the file name', () => {
  assert.deepEqual(tokenize('a\nb', '/etc/x.conf'), [
    { text: 'a', file: '/etc/x.conf', line: 1 },
    { text: 'b', file: '/etc/x.conf', line: 2 },
  ]);
});
