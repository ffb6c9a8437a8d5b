import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaddyfileError, parse, type ParseOptions, type ServerBlock } from '../../src/caddyfile/index.js';

/** keys plus directive -> token count, in Map order (like Caddy's parse_test tables). */
function summary(b: ServerBlock): { keys: string[]; counts: [string, number][] } {
  return { keys: b.keys, counts: [...b.tokens].map(([k, v]) => [k, v.length]) };
}

/** directive -> token texts. */
function texts(b: ServerBlock): Record<string, string[]> {
  return Object.fromEntries([...b.tokens].map(([k, v]) => [k, v.map((t) => t.text)]));
}

let dir = '';
const env = {};

function write(rel: string, text: string): string {
  const file = join(dir, rel);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
  return file;
}

function errorOf(text: string, file: string, options: ParseOptions = {}): string {
  try {
    parse(text, file, { env, ...options });
  } catch (e) {
    assert.ok(e instanceof CaddyfileError, `not a CaddyfileError: ${String(e)}`);
    return e.message;
  }
  assert.fail('expected an error');
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodecaddy-caddyfile-'));
  write('Caddyfile', '# the top file, for tests that name it\n');
  // Caddy v1's caddyfile/testdata
  write('testdata/import_test1.txt', 'dir2 arg1 arg2\ndir3');
  write('testdata/import_test2.txt', 'host1 {\n\tdir1\n\tdir2 arg1\n}');
  write('testdata/import_glob0.txt', 'glob0.host0 {\n\tdir2 arg1\n}\n\nglob0.host1 {\n}\n');
  write('testdata/import_glob1.txt', 'glob1.host0 {\n\tdir1\n\tdir2 arg1\n}\n');
  write('testdata/import_glob2.txt', 'glob2.host0 {\n\tdir2 arg1\n}\n');
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('import', () => {
  test('directive lines from a file (Caddy case)', () => {
    const r = parse('localhost\n  dir1 arg1\n  import testdata/import_test1.txt', join(dir, 'Caddyfile'), {
      env,
    });
    assert.deepEqual(summary(r.blocks[0]), {
      keys: ['localhost'],
      counts: [
        ['dir1', 2],
        ['dir2', 3],
        ['dir3', 1],
      ],
    });
    const imported = join(dir, 'testdata/import_test1.txt');
    assert.deepEqual(
      r.blocks[0].tokens.get('dir2')!.map((t) => [t.text, t.file, t.line]),
      [
        ['dir2', imported, 1],
        ['arg1', imported, 1],
        ['arg2', imported, 1],
      ],
    );
    assert.deepEqual(r.files, [imported]);
    assert.deepEqual(r.warnings, []);
  });

  test('a whole server block from a file at top level (Caddy case)', () => {
    const r = parse('import testdata/import_test2.txt', 'stdin', { env, baseDir: dir });
    assert.deepEqual(summary(r.blocks[0]), {
      keys: ['host1'],
      counts: [
        ['dir1', 1],
        ['dir2', 2],
      ],
    });
  });

  test('glob: matches in lexical order, tokens concatenated (Caddy case)', () => {
    const r = parse('import testdata/import_glob*.txt', 'stdin', { env, baseDir: dir });
    assert.deepEqual(
      r.blocks.map((b) => b.keys),
      [['glob0.host0'], ['glob0.host1'], ['glob1.host0'], ['glob2.host0']],
    );
    assert.deepEqual(
      r.files,
      [0, 1, 2].map((i) => join(dir, `testdata/import_glob${i}.txt`)),
    );
  });

  test('glob with ? and a wildcard directory', () => {
    write('sites/a/site.conf', 'a.test {\n  root /a\n}');
    write('sites/b/site.conf', 'b.test {\n  root /b\n}');
    write('sites/b/other.txt', 'nope');
    const r = parse('import sites/*/site.con?', 'stdin', { env, baseDir: dir });
    assert.deepEqual(
      r.blocks.map((b) => b.keys),
      [['a.test'], ['b.test']],
    );
  });

  test('a glob with no match is a warning, not an error', () => {
    const r = parse('import notfound/*\nlocalhost', 'stdin', { env, baseDir: dir });
    assert.deepEqual(r.warnings, ['No files matching import glob pattern: notfound/*']);
    assert.deepEqual(
      r.blocks.map((b) => b.keys),
      [['localhost']],
    );
  });

  test('a named missing file is an error', () => {
    assert.equal(
      errorOf('\nimport notfound/file.conf', 'stdin', { baseDir: dir }),
      'stdin:2 - Error during parsing: File to import not found: notfound/file.conf',
    );
  });

  test('import with more than one argument is an error (Caddy case)', () => {
    assert.equal(
      errorOf('import testdata/import_test1.txt testdata/import_test2.txt', 'stdin', { baseDir: dir }),
      'stdin:1 - Error during parsing: Import takes only one argument (glob pattern or file)',
    );
  });

  test('relative imports resolve against the importing file, recursively; absolute ones as given', () => {
    const inner = write('nested/deeper/inner.conf', 'dir2 1');
    write('nested/outer.conf', 'localhost\ndir1\nimport deeper/inner.conf');
    const viaRelative = parse('import nested/outer.conf', join(dir, 'Caddyfile'), { env });
    assert.deepEqual(texts(viaRelative.blocks[0]), { dir1: ['dir1'], dir2: ['dir2', '1'] });
    assert.deepEqual(viaRelative.files, [join(dir, 'nested/outer.conf'), inner]);
    write('nested/outer-abs.conf', `localhost\ndir1\nimport ${inner}`);
    const viaAbsolute = parse(`import ${join(dir, 'nested/outer-abs.conf')}`, 'args', { env });
    assert.deepEqual(texts(viaAbsolute.blocks[0]), { dir1: ['dir1'], dir2: ['dir2', '1'] });
  });

  test('relative imports of the top file default to its directory', () => {
    write('rel/conf/part.conf', 'gzip');
    const top = write('rel/Caddyfile', 'x {\n  import conf/part.conf\n}');
    assert.deepEqual(texts(parse('x {\n  import conf/part.conf\n}', top, { env }).blocks[0]), {
      gzip: ['gzip'],
    });
  });

  test('env vars in import paths', () => {
    const r = parse('import testdata/{$WHICH}', 'stdin', {
      env: { WHICH: 'import_test2.txt' },
      baseDir: dir,
    });
    assert.deepEqual(r.blocks[0].keys, ['host1']);
  });

  test('import inside a directive block (Caddy case)', () => {
    write('testdata/directive_import_test', 'prop1 1\n\tprop2 2');
    const r = parse(
      'localhost\n\tdir1\n\tproxy {\n\t\timport testdata/directive_import_test\n\t\ttransparent\n\t}',
      'stdin',
      { env, baseDir: dir },
    );
    assert.deepEqual(summary(r.blocks[0]), {
      keys: ['localhost'],
      counts: [
        ['dir1', 1],
        ['proxy', 8],
      ],
    });
    assert.deepEqual(texts(r.blocks[0]).proxy, [
      'proxy',
      '{',
      'prop1',
      '1',
      'prop2',
      '2',
      'transparent',
      '}',
    ]);
    assert.equal(
      errorOf('localhost\n\tproxy {\n\t\timport testdata/nonexistent_file\n\t}', 'stdin', { baseDir: dir }),
      'stdin:3 - Error during parsing: File to import not found: testdata/nonexistent_file',
    );
  });

  test('`import` as an argument in an imported file stays literal (Caddy case)', () => {
    const f = write(
      'basicauth.conf',
      'http://example.com {\n\t# just an argument\n\tbasicauth / import password\n}\n',
    );
    const r = parse(`import ${f}`, 'stdin', { env });
    assert.deepEqual(texts(r.blocks[0]), { basicauth: ['basicauth', '/', 'import', 'password'] });
  });

  test('errors in imported files name the absolute path and the line there', () => {
    const f = write('bad/site.conf', 'a {\n  root /\n  gzp\n}');
    assert.equal(
      errorOf('import bad/site.conf', 'Caddyfile', { baseDir: dir, directives: ['root', 'gzip'] }),
      `${f}:3 - Error during parsing: Unknown directive 'gzp' (did you mean 'gzip'?)`,
    );
  });

  test('a token of another file is never on the same line', () => {
    write('args.conf', 'b c');
    const r = parse('x {\n  dir a\n  import args.conf\n}', 'stdin', { env, baseDir: dir });
    assert.deepEqual(texts(r.blocks[0]), { dir: ['dir', 'a'], b: ['b', 'c'] });
  });

  test('importing an empty file is an error (Caddy QUIRK); a file of only comments is not', () => {
    const empty = write('empty.conf', '');
    assert.equal(
      errorOf('a {\n  import empty.conf\n}', 'stdin', { baseDir: dir }),
      `stdin:2 - Error during parsing: Could not read tokens while importing ${empty}: EOF`,
    );
    write('comments.conf', '# nothing here\n');
    assert.deepEqual(parse('a {\n  import comments.conf\n}', 'stdin', { env, baseDir: dir }).blocks[0].keys, [
      'a',
    ]);
  });

  test('imported files may start with a BOM and use CRLF', () => {
    const f = write('bom.conf', '\ufeffgzip\r\nroot /x\r\n');
    const b = parse('a {\n  import bom.conf\n}', 'stdin', { env, baseDir: dir }).blocks[0];
    assert.deepEqual(texts(b), { gzip: ['gzip'], root: ['root', '/x'] });
    assert.deepEqual(
      b.tokens.get('root')?.map((t) => [t.file, t.line]),
      [
        [f, 2],
        [f, 2],
      ],
    );
  });

  test('importing a directory is an error', () => {
    mkdirSync(join(dir, 'adir'), { recursive: true });
    assert.equal(
      errorOf('import adir', 'stdin', { baseDir: dir }),
      `stdin:1 - Error during parsing: Could not import ${join(dir, 'adir')}: is a directory`,
    );
  });

  test('a lone [ is a bad glob pattern', () => {
    assert.equal(
      errorOf('import x[y*', 'stdin', { baseDir: dir }),
      'stdin:1 - Error during parsing: Failed to use import pattern x[y*: syntax error in pattern',
    );
  });

  test('an import cycle between files is an error naming the cycle', () => {
    const a = write('cycle/a.conf', 'import b.conf');
    const b = write('cycle/b.conf', 'x {\n  gzip\n  import a.conf\n}');
    assert.equal(
      errorOf('import cycle/a.conf', 'stdin', { baseDir: dir }),
      `${b}:3 - Error during parsing: Import cycle detected: ${a} -> ${b} -> ${a}`,
    );
  });

  test('a file importing itself (also through a glob) is an import cycle', () => {
    const self = write('selfglob/site.conf', 'import *.conf');
    assert.equal(
      errorOf('import selfglob/*.conf', 'stdin', { baseDir: dir }),
      `${self}:1 - Error during parsing: Import cycle detected: ${self} -> ${self}`,
    );
    const top = write('selftop/Caddyfile', 'a {\n  import Caddyfile\n}');
    assert.equal(
      errorOf('a {\n  import Caddyfile\n}', top),
      `${top}:2 - Error during parsing: Import cycle detected: ${top} -> ${top}`,
    );
  });

  test('the same file imported twice (not nested) is fine', () => {
    write('twice/part.conf', 'gzip');
    const r = parse('a {\n  import twice/part.conf\n}\nb {\n  import twice/part.conf\n}', 'stdin', {
      env,
      baseDir: dir,
    });
    assert.deepEqual(
      r.blocks.map((b) => texts(b)),
      [{ gzip: ['gzip'] }, { gzip: ['gzip'] }],
    );
    assert.deepEqual(r.files, [join(dir, 'twice/part.conf')]);
  });
});

describe('snippets', () => {
  test('defined and used in one file (Caddy case)', () => {
    const r = parse(
      '\n\t\t(common) {\n\t\t\tgzip foo\n\t\t\terrors stderr\n\t\t}\n\t\thttp://example.com {\n\t\t\timport common\n\t\t}\n',
      'Caddyfile',
      { env },
    );
    assert.equal(r.blocks.length, 1);
    assert.deepEqual(r.blocks[0].keys, ['http://example.com']);
    assert.deepEqual(texts(r.blocks[0]), { gzip: ['gzip', 'foo'], errors: ['errors', 'stderr'] });
    assert.deepEqual(
      r.blocks[0].tokens.get('gzip')!.map((t) => t.line),
      [3, 3],
    );
  });

  test('used from a file imported later (Caddy case)', () => {
    const f = write('snip/site.conf', '\n\t\thttp://example.com {\n\t\t\timport common\n\t\t}\n');
    const r = parse(`(common) {\n\tgzip foo\n}\nimport ${f}\n`, 'Caddyfile', { env });
    assert.equal(r.blocks.length, 1);
    assert.deepEqual(r.blocks[0].keys, ['http://example.com']);
    assert.deepEqual(texts(r.blocks[0]), { gzip: ['gzip', 'foo'] });
  });

  test('a snippet wins over a file of the same name; nested braces are kept; snippets may import', () => {
    write('snip2/common', 'root /from-file');
    write('snip2/part.conf', 'log access.log');
    const r = parse(
      '(common) {\n  proxy / a {\n    transparent\n  }\n  import part.conf\n}\nx {\n  import common\n}',
      'stdin',
      { env, baseDir: join(dir, 'snip2') },
    );
    assert.deepEqual(texts(r.blocks[0]), {
      proxy: ['proxy', '/', 'a', '{', 'transparent', '}'],
      log: ['log', 'access.log'],
    });
  });

  test('a snippet is env-expanded where it is used, an empty snippet imports nothing', () => {
    const r = parse('(s) {\n  root {$R}\n}\n(e) {\n}\nx {\n  import e\n  import s\n}', 'stdin', {
      env: { R: '/srv' },
    });
    assert.deepEqual(texts(r.blocks[0]), { root: ['root', '/srv'] });
  });

  test('a snippet that imports itself is an import cycle', () => {
    assert.equal(
      errorOf('(a) {\n  import b\n}\n(b) {\n  gzip\n  import a\n}\nx {\n  import a\n}', 'Caddyfile'),
      'Caddyfile:6 - Error during parsing: Import cycle detected: (a) -> (b) -> (a)',
    );
  });
});
