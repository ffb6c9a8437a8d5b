import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileTemplate, TemplateError, type Schema } from '../../src/middleware/browse/template.js';
import { humanSize, sortItems, type Item } from '../../src/middleware/browse/listing.js';

const schema: Schema = { title: true, flag: true, list: { name: true, n: true }, obj: { a: true } };

test('placeholders are escaped; sections repeat, show and hide; outer names stay visible inside', () => {
  const t = compileTemplate(
    '<h1>{{ title }}</h1>{{! a comment }}{{#list}}<i>{{name}}:{{n}}:{{title}}</i>{{/list}}{{^list}}none{{/list}}{{#flag}}on{{/flag}}{{^flag}}off{{/flag}}{{obj.a}}',
    schema,
  );
  assert.equal(
    t.render({
      title: '<b>"x"&\'y\'</b>',
      list: [
        { name: 'a', n: 1 },
        { name: '<s>', n: 0 },
      ],
      flag: true,
      obj: { a: 'A' },
    }),
    '<h1>&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/b&gt;</h1><i>a:1:&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/b&gt;</i><i>&lt;s&gt;:0:&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/b&gt;</i>onA',
  );
  assert.equal(t.render({ title: 't', list: [], flag: false, obj: { a: '' } }), '<h1>t</h1>noneoff');
});

test('template errors name the problem and the line', () => {
  const cases: [string, RegExp][] = [
    [
      'a\n{{nope}}',
      /unknown placeholder \{\{nope\}\}.*known here: title, flag, list, obj \(template line 2\)/,
    ],
    ['{{#list}}{{/flag}}', /\{\{\/flag\}\} closes \{\{#list\}\}/],
    ['{{/list}}', /closes nothing/],
    ['{{#list}}\n\n', /\{\{#list\}\} is never closed \(template line 1\)/],
    ['{{list}}', /is a list: use \{\{#list\}\}/],
    ['{{a b}}', /is not a placeholder name/],
    ['{{#list}}{{a}}{{/list}}', /unknown placeholder \{\{a\}\}/],
  ];
  for (const [source, message] of cases) {
    assert.throws(
      () => compileTemplate(source, schema),
      (err: unknown) => {
        assert.ok(err instanceof TemplateError, source);
        assert.match(err.message, message, source);
        return true;
      },
    );
  }
});

test('sizes read like go-humanize IBytes', () => {
  assert.equal(humanSize(0), '0 B');
  assert.equal(humanSize(1023), '1023 B');
  assert.equal(humanSize(1024), '1.0 KiB');
  assert.equal(humanSize(15 * 1024), '15 KiB');
  assert.equal(humanSize(3.5 * 1024 * 1024), '3.5 MiB');
});

test('sorts as Caddy v1: size puts directories first and desc reverses exactly', () => {
  const item = (name: string, size: number, isDir = false, mtimeMs = 0): Item => ({
    name,
    size,
    isDir,
    mtimeMs,
    url: '',
    mode: 0,
    isSymlink: false,
  });
  const items = [item('b', 5), item('Z', 0, true), item('a', 9), item('c', 1), item('y', 0, true)];
  sortItems(items, 'size', 'asc');
  assert.deepEqual(
    items.map((i) => i.name),
    ['y', 'Z', 'c', 'b', 'a'],
  );
  sortItems(items, 'size', 'desc');
  assert.deepEqual(
    items.map((i) => i.name),
    ['a', 'b', 'c', 'Z', 'y'],
  );
  sortItems(items, 'namedirfirst', 'asc');
  assert.deepEqual(
    items.map((i) => i.name),
    ['y', 'Z', 'a', 'b', 'c'],
  );
  sortItems(items, 'name', 'desc');
  assert.deepEqual(
    items.map((i) => i.name),
    ['Z', 'y', 'c', 'b', 'a'],
  );
  const before = items.map((i) => i.name);
  sortItems(items, 'bogus', 'asc');
  assert.deepEqual(
    items.map((i) => i.name),
    before,
  );
});
