import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodePath, parseAbsoluteForm, splitUri } from '../../src/core/context.js';
import { HttpError } from '../../src/core/errors.js';

describe('request target helpers', () => {
  test('splitUri keeps the raw (escaped) forms and drops a fragment', () => {
    assert.deepEqual(splitUri('/a%20b?x=1&y'), { rawPath: '/a%20b', rawQuery: 'x=1&y' });
    assert.deepEqual(splitUri('/a#frag'), { rawPath: '/a', rawQuery: '' });
    assert.deepEqual(splitUri('/?'), { rawPath: '/', rawQuery: '' });
  });

  test('decodePath decodes, and refuses malformed escapes and NUL', () => {
    assert.equal(decodePath('/a%20b/%2e%2e/c'), '/a b/../c');
    assert.equal(decodePath('/%E2%9C%93'), '/✓');
    for (const bad of ['/%zz', '/%E2%9C', '/a%00', '/%']) {
      assert.throws(
        () => decodePath(bad),
        (e: unknown) => e instanceof HttpError && e.status === 400,
        bad,
      );
    }
  });

  test('parseAbsoluteForm', () => {
    assert.deepEqual(parseAbsoluteForm('http://Example.com:8080/p?q=1'), {
      target: '/p?q=1',
      authority: 'Example.com:8080',
    });
    assert.deepEqual(parseAbsoluteForm('HTTPS://a.test'), { target: '/', authority: 'a.test' });
    assert.deepEqual(parseAbsoluteForm('http://a.test?x'), { target: '/?x', authority: 'a.test' });
    assert.deepEqual(parseAbsoluteForm('http://[::1]:80/x'), { target: '/x', authority: '[::1]:80' });
    for (const bad of ['index.html', 'ftp://a/b', 'http:///x', 'http://user@a.test/', '*']) {
      assert.equal(parseAbsoluteForm(bad), undefined, bad);
    }
  });
});
