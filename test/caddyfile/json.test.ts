import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaddyfileError, caddyfileToJson, jsonToCaddyfile } from '../../src/caddyfile/index.js';

// Ported from Caddy v1's caddyfile/json_test.go: each pair converts both ways, exactly.
const pairs: { caddyfile: string; json: string }[] = [
  { caddyfile: 'foo {\n\troot /bar\n}', json: '[{"keys":["foo"],"body":[["root","/bar"]]}]' },
  {
    caddyfile: 'host1, host2 {\n\tdir {\n\t\tdef\n\t}\n}',
    json: '[{"keys":["host1","host2"],"body":[["dir",[["def"]]]]}]',
  },
  {
    caddyfile: 'host1, host2 {\n\tdir abc {\n\t\tdef ghi\n\t\tjkl\n\t}\n}',
    json: '[{"keys":["host1","host2"],"body":[["dir","abc",[["def","ghi"],["jkl"]]]]}]',
  },
  {
    caddyfile: 'host1:1234, host2:5678 {\n\tdir abc {\n\t}\n}',
    json: '[{"keys":["host1:1234","host2:5678"],"body":[["dir","abc",[]]]}]',
  },
  { caddyfile: 'host {\n\tfoo "bar baz"\n}', json: '[{"keys":["host"],"body":[["foo","bar baz"]]}]' },
  {
    caddyfile: 'host, host:80 {\n\tfoo "bar \\"baz\\""\n}',
    json: '[{"keys":["host","host:80"],"body":[["foo","bar \\"baz\\""]]}]',
  },
  { caddyfile: 'host {\n\tfoo "bar\nbaz"\n}', json: '[{"keys":["host"],"body":[["foo","bar\\nbaz"]]}]' },
  {
    caddyfile: 'host {\n\tdir 123 4.56 true\n}',
    json: '[{"keys":["host"],"body":[["dir","123","4.56","true"]]}]',
  },
  {
    caddyfile: 'http://host, https://host {\n}',
    json: '[{"keys":["http://host","https://host"],"body":[]}]',
  },
  {
    caddyfile: 'host {\n\tdir1 a b\n\tdir2 c d\n}',
    json: '[{"keys":["host"],"body":[["dir1","a","b"],["dir2","c","d"]]}]',
  },
  {
    caddyfile: 'host {\n\tdir a b\n\tdir c d\n}',
    json: '[{"keys":["host"],"body":[["dir","a","b"],["dir","c","d"]]}]',
  },
  {
    caddyfile: 'host {\n\tdir1 a b\n\tdir2 {\n\t\tc\n\t\td\n\t}\n}',
    json: '[{"keys":["host"],"body":[["dir1","a","b"],["dir2",[["c"],["d"]]]]}]',
  },
  {
    caddyfile: 'host1 {\n\tdir1\n}\n\nhost2 {\n\tdir2\n}',
    json: '[{"keys":["host1"],"body":[["dir1"]]},{"keys":["host2"],"body":[["dir2"]]}]',
  },
  // ours: deeper nesting and a tab inside a token
  {
    caddyfile: 'a {\n\tproxy / b {\n\t\tx {\n\t\t\ty z\n\t\t}\n\t}\n}',
    json: '[{"keys":["a"],"body":[["proxy","/","b",[["x",[["y","z"]]]]]]}]',
  },
  { caddyfile: 'a {\n\theader / X "a\tb"\n}', json: '[{"keys":["a"],"body":[["header","/","X","a\\tb"]]}]' },
];

for (const [i, c] of pairs.entries()) {
  test(`json: Caddyfile -> JSON case ${i}`, () => {
    assert.equal(caddyfileToJson(c.caddyfile), c.json);
  });
  test(`json: JSON -> Caddyfile case ${i}`, () => {
    assert.equal(jsonToCaddyfile(c.json), c.caddyfile);
  });
  test(`json: round trip case ${i}`, () => {
    assert.equal(caddyfileToJson(jsonToCaddyfile(c.json)), c.json);
  });
}

test('json: body lines grouped by directive name in sorted order, file order within a name', () => {
  assert.equal(
    caddyfileToJson('a {\n  root /x\n  gzip\n  root /y\n  Zed 1\n  basicauth / u p\n}'),
    '[{"keys":["a"],"body":[["Zed","1"],["basicauth","/","u","p"],["gzip"],["root","/x"],["root","/y"]]}]',
  );
});

test('json: any directive name is accepted, even with a directive list in the options', () => {
  assert.equal(
    caddyfileToJson('a {\n  nosuch x\n}', 'Caddyfile', { directives: ['root'] }),
    '[{"keys":["a"],"body":[["nosuch","x"]]}]',
  );
});

test('json: Go json.Marshal escaping', () => {
  assert.equal(
    caddyfileToJson('a {\n  t "<b>&\\"q\\" \\\\ \u0001\u007f\u2028é"\n}'),
    '[{"keys":["a"],"body":[["t","\\u003cb\\u003e\\u0026\\"q\\" \\\\\\\\ \\u0001\u007f\\u2028é"]]}]',
  );
});

test('json: an empty Caddyfile is an empty list', () => {
  assert.equal(caddyfileToJson(''), '[]');
  assert.equal(caddyfileToJson('# only a comment\n'), '[]');
  assert.equal(caddyfileToJson('(snippet) {\n\tgzip\n}\n'), '[]');
  assert.equal(jsonToCaddyfile('null'), '');
  assert.equal(jsonToCaddyfile('[]'), '');
});

test('json: env vars are expanded; parse errors carry the file name', () => {
  assert.equal(
    caddyfileToJson('{$H} {\n  root {$R}\n}', 'Caddyfile', { env: { H: 'h.test', R: '/srv' } }),
    '[{"keys":["h.test"],"body":[["root","/srv"]]}]',
  );
  assert.throws(
    () => caddyfileToJson('a {\n  b }\n}', ''),
    (e: unknown) =>
      e instanceof CaddyfileError &&
      e.message === "Caddyfile:2 - Error during parsing: Unexpected '}' because no matching opening brace",
  );
});

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodecaddy-json-'));
  writeFileSync(join(dir, 'part.conf'), 'gzip\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('json: relative imports resolve against the base directory', () => {
  assert.equal(
    caddyfileToJson('a {\n  import part.conf\n}', '', { baseDir: dir }),
    '[{"keys":["a"],"body":[["gzip"]]}]',
  );
});

test('json -> Caddyfile: numbers, booleans and null as Go prints them', () => {
  assert.equal(
    jsonToCaddyfile('[{"keys":["h"],"body":[["d",1,4.5,1000000,0.00001,123456,-0,true,false,null,"x"]]}]'),
    'h {\n\td 1 4.5 1e+06 1e-05 123456 -0 true false  x\n}',
  );
});

test('json -> Caddyfile: QUIRK no space after a block that is not last; tokens with spaces are quoted', () => {
  assert.equal(
    jsonToCaddyfile('[{"keys":["h"],"body":[["d",[["x"]],"after"],["q","a b","c\\"d","e\\rf"]]}]'),
    'h {\n\td {\n\t\tx\n\t}after\n\tq "a b" "c\\"d" "e\rf"\n}',
  );
});

test('json -> Caddyfile: field names match case-insensitively, unknown fields and null lines are ignored', () => {
  assert.equal(
    jsonToCaddyfile('[{"Keys":["a","b"],"BODY":[["gzip"],null],"other":1},null]'),
    'a, b {\n\tgzip\n\t\n}\n\n {\n}',
  );
});

const bad: [string, string][] = [
  ['{', 'Invalid JSON: '],
  ['{"keys":["a"]}', 'JSON Caddyfile must be an array of server blocks, not object'],
  ['[1]', 'JSON Caddyfile: server block 0 must be an object, not number'],
  ['[{"keys":"a"}]', 'JSON Caddyfile: "keys" of server block 0 must be an array, not string'],
  ['[{"keys":[1]}]', 'JSON Caddyfile: key 0 of server block 0 must be a string, not number'],
  ['[{"keys":["a"],"body":{}}]', 'JSON Caddyfile: "body" of server block 0 must be an array, not object'],
  [
    '[{"keys":["a"]},{"keys":["b"],"body":["gzip"]}]',
    'JSON Caddyfile: line 0 of server block 1 must be an array, not string',
  ],
];

for (const [input, message] of bad) {
  test(`json -> Caddyfile: error for ${input}`, () => {
    assert.throws(
      () => jsonToCaddyfile(input),
      (e: unknown) =>
        e instanceof Error &&
        e.message.startsWith(message) &&
        (message.endsWith(' ') || e.message === message),
    );
  });
}
