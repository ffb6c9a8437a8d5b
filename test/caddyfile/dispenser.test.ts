import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CaddyfileError, Dispenser, tokenize } from '../../src/caddyfile/index.js';

const disp = (input: string) => new Dispenser(tokenize(input, 'Testfile'));

// Ported from Caddy v1's caddyfile/dispenser_test.go.
test('dispenser: val and next', () => {
  const d = disp('host:port\n  dir1 arg1\n  dir2 arg2 arg3\n  dir3');
  assert.equal(d.val(), '');
  assert.equal(d.line(), 0);
  assert.equal(d.file(), 'Testfile');
  const seen: [boolean, number, string][] = [];
  for (let i = 0; i < 8; i++) seen.push([d.next(), d.cursor, d.val()]);
  assert.deepEqual(seen, [
    [true, 0, 'host:port'],
    [true, 1, 'dir1'],
    [true, 2, 'arg1'],
    [true, 3, 'dir2'],
    [true, 4, 'arg2'],
    [true, 5, 'arg3'],
    [true, 6, 'dir3'],
    [false, 6, 'dir3'], // the cursor stays on the last token
  ]);
  assert.equal(d.nesting(), 0);
});

test('dispenser: nextArg', () => {
  const d = disp('dir1 arg1\n  dir2 arg2 arg3\n  dir3');
  assert.equal(d.next(), true);
  assert.deepEqual([d.nextArg(), d.val(), d.nextArg(), d.cursor], [true, 'arg1', false, 1]);
  assert.equal(d.next(), true);
  assert.deepEqual(
    [d.nextArg(), d.val(), d.nextArg(), d.val(), d.nextArg(), d.cursor],
    [true, 'arg2', true, 'arg3', false, 4],
  );
  assert.deepEqual([d.next(), d.val(), d.next(), d.cursor], [true, 'dir3', false, 5]);
});

test('dispenser: nextLine', () => {
  const d = disp('host:port\n  dir1 arg1\n  dir2 arg2 arg3');
  assert.deepEqual([d.nextLine(), d.val(), d.cursor], [true, 'host:port', 0]);
  assert.deepEqual([d.nextLine(), d.val(), d.cursor], [true, 'dir1', 1]);
  assert.deepEqual([d.nextLine(), d.val(), d.cursor], [false, 'dir1', 1]);
  d.next(); // arg1
  assert.deepEqual([d.nextLine(), d.val(), d.cursor], [true, 'dir2', 3]);
  assert.deepEqual([d.nextLine(), d.cursor], [false, 3]);
  d.next(); // arg2
  assert.deepEqual([d.nextLine(), d.val()], [false, 'arg2']);
  d.next(); // arg3
  assert.deepEqual([d.nextLine(), d.val(), d.cursor], [false, 'arg3', 5]);
});

test('dispenser: nextBlock', () => {
  const d = disp('foobar1 {\n  sub1 arg1\n  sub2\n}\nfoobar2 {\n}');
  const step = (): [boolean, number, number] => [d.nextBlock(), d.cursor, d.nesting()];
  assert.deepEqual(step(), [false, -1, 0]);
  d.next(); // foobar1
  assert.deepEqual(step(), [true, 2, 1]);
  assert.equal(d.val(), 'sub1');
  assert.deepEqual(step(), [true, 3, 1]);
  assert.deepEqual(step(), [true, 4, 1]);
  assert.deepEqual(step(), [false, 5, 0]);
  d.next(); // foobar2
  assert.deepEqual(step(), [false, 8, 0]); // an empty block is as if it did not exist
});

test('dispenser: nextBlock needs the `{` on the same line and does not move otherwise', () => {
  const d = disp('dir arg\n{\n  x\n}');
  d.next();
  d.next(); // arg
  assert.deepEqual([d.nextBlock(), d.cursor], [false, 1]);
  const e = disp('dir arg');
  e.next();
  assert.deepEqual([e.nextBlock(), e.cursor, e.val()], [false, 0, 'dir']);
});

test('dispenser: nextBlock ends at the end of unbalanced tokens instead of looping', () => {
  const d = disp('dir {\n  a');
  d.next();
  assert.deepEqual([d.nextBlock(), d.val()], [true, 'a']);
  assert.deepEqual([d.nextBlock(), d.nesting()], [false, 0]);
});

test('dispenser: args', () => {
  const d = disp('dir1 arg1 arg2 arg3\n  dir2 arg4 arg5\n  dir3 arg6 arg7\n  dir4');
  d.next();
  assert.deepEqual(d.args(3), ['arg1', 'arg2', 'arg3']);
  d.next();
  assert.equal(d.args(3), null); // fewer than asked for
  assert.equal(d.cursor, 6); // consumed arg4 and arg5, like Go
  d.next();
  assert.deepEqual(d.args(1), ['arg6']);
  d.next();
  assert.deepEqual(d.args(0), []);
  assert.equal(d.args(1), null);
});

test('dispenser: remainingArgs stops before `{`', () => {
  const d = disp('dir1 arg1 arg2 arg3\n  dir2 arg4 arg5\n  dir3 arg6 { arg7\n  dir4');
  d.next();
  assert.deepEqual(d.remainingArgs(), ['arg1', 'arg2', 'arg3']);
  d.next();
  assert.deepEqual(d.remainingArgs(), ['arg4', 'arg5']);
  d.next();
  assert.deepEqual(d.remainingArgs(), ['arg6']);
  assert.equal(d.val(), 'arg6'); // `{` not consumed
  d.next(); // {
  d.next(); // arg7
  d.next(); // dir4
  assert.deepEqual(d.remainingArgs(), []);
});

test('dispenser: a quoted token with line breaks ends on a later line', () => {
  const d = disp('dir "a\nb" c\nnext');
  d.next();
  assert.deepEqual(d.remainingArgs(), ['a\nb', 'c']);
  assert.deepEqual([d.nextArg(), d.nextLine(), d.val(), d.line()], [false, true, 'next', 3]);
});

test('dispenser: tokens of another file are never on the same line', () => {
  const d = new Dispenser([
    { text: 'dir', file: 'A', line: 1 },
    { text: 'x', file: 'B', line: 1 },
  ]);
  d.next();
  assert.deepEqual([d.nextArg(), d.nextLine(), d.val(), d.file()], [false, true, 'x', 'B']);
});

test('dispenser: error messages', () => {
  const d = disp('dir1 {\n}\ndir2 arg1 arg2');
  d.next();
  d.next(); // {
  const a = d.argErr();
  assert.ok(a instanceof CaddyfileError);
  assert.equal(a.message, "Testfile:1 - Error during parsing: Unexpected token '{', expecting argument");
  d.next();
  d.next();
  d.next();
  d.next(); // arg2
  assert.equal(
    d.argErr().message,
    "Testfile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'arg2'",
  );
  const e = d.err('foobar');
  assert.deepEqual([e.message, e.file, e.line], ['Testfile:3 - Error during parsing: foobar', 'Testfile', 3]);
  assert.equal(d.syntaxErr('}').message, "Testfile:3 - Syntax error: Unexpected token 'arg2', expecting '}'");
  assert.equal(d.eofErr().message, 'Testfile:3 - Error during parsing: Unexpected EOF');
  assert.equal(
    d.unknownSubdirective().message,
    "Testfile:3 - Error during parsing: Unknown subdirective 'arg2'",
  );
  assert.equal(
    d.unknownSubdirective(['arg1', 'other']).message,
    "Testfile:3 - Error during parsing: Unknown subdirective 'arg2' (did you mean 'arg1'?)",
  );
  assert.equal(
    d.unknownSubdirective(['zzz']).message,
    "Testfile:3 - Error during parsing: Unknown subdirective 'arg2'",
  );
});

test('dispenser: without a current token, line is 0 and file is the given name', () => {
  const d = new Dispenser([], 'Caddyfile');
  assert.equal(d.err('x').message, 'Caddyfile:0 - Error during parsing: x');
  assert.equal(d.next(), false);
  assert.equal(d.nextArg(), true); // Go quirk: the first nextArg always moves
  assert.equal(d.val(), '');
});
