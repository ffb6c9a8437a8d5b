import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preconditions, rangeStillValid } from '../../src/middleware/static/conditional.js';
import { chooseVariant, type Variant } from '../../src/middleware/static/encoding.js';
import { parseRange } from '../../src/middleware/static/range.js';
import { joinUnderRoot } from '../../src/core/files/paths.js';
import { HttpError } from '../../src/core/errors.js';

test('parseRange: satisfiable, unsatisfiable, ignored', () => {
  assert.deepEqual(parseRange('bytes=0-0', 10), [[0, 0]]);
  assert.deepEqual(parseRange('BYTES = 2-3 , -2', 10), [
    [2, 3],
    [8, 9],
  ]);
  assert.deepEqual(parseRange('bytes=,0-1,', 10), [[0, 1]]);
  assert.deepEqual(parseRange('bytes=0-99999999999999999999', 10), [[0, 9]]);
  assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=-5', 0), 'unsatisfiable');
  for (const bad of [
    'bytes=',
    'bytes=,',
    'bytes=a-b',
    'bytes=3-2',
    'bytes 0-1',
    'none=0-1',
    'bytes=1-2-3',
    'bytes=0-4,3-9',
  ])
    assert.equal(parseRange(bad, 10), 'ignore', bad);
  assert.equal(parseRange(`bytes=${'0-0,'.repeat(33)}`, 1000), 'ignore');
});

test('preconditions in RFC order, If-Range', () => {
  const v = { etag: '"abc"', mtimeMs: Date.parse('2024-01-02T03:04:05.678Z') };
  const lm = new Date(v.mtimeMs).toUTCString();
  assert.equal(preconditions({}, v, 'GET'), 200);
  assert.equal(preconditions({ 'if-match': '"x", "abc"' }, v, 'GET'), 200);
  assert.equal(preconditions({ 'if-match': 'W/"abc"' }, v, 'GET'), 412);
  // If-Match present: If-Unmodified-Since is not looked at.
  assert.equal(
    preconditions({ 'if-match': '"abc"', 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }, v, 'GET'),
    200,
  );
  assert.equal(preconditions({ 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }, v, 'GET'), 412);
  assert.equal(preconditions({ 'if-none-match': 'W/"abc"' }, v, 'HEAD'), 304);
  assert.equal(preconditions({ 'if-none-match': '"abc"' }, v, 'DELETE'), 412);
  assert.equal(preconditions({ 'if-modified-since': lm }, v, 'GET'), 304);
  assert.equal(rangeStillValid(undefined, v), true);
  assert.equal(rangeStillValid('"abc"', v), true);
  assert.equal(rangeStillValid('W/"abc"', v), false);
  assert.equal(rangeStillValid(lm, v), true);
  assert.equal(rangeStillValid(new Date(v.mtimeMs + 5000).toUTCString(), v), false);
});

test('chooseVariant: q-values, wildcard, identity, ties by preference', () => {
  const variants = [{ encoding: 'br' }, { encoding: 'zstd' }, { encoding: 'gzip' }] as unknown as Variant[];
  const pick = (ae: string | undefined) => chooseVariant(ae, variants)?.encoding;
  assert.equal(pick(undefined), undefined);
  assert.equal(pick('gzip, br'), 'br');
  assert.equal(pick('gzip;q=1, br;q=0.8'), 'gzip');
  assert.equal(pick('zstd;q=0.9, *;q=0.1'), 'zstd');
  assert.equal(pick('*;q=0'), undefined);
  assert.equal(pick('x-gzip'), 'gzip');
  assert.equal(pick('gzip;q=0.5, identity;q=1'), undefined);
  assert.equal(pick('GZIP ; Q=0.5'), 'gzip');
  // The same answer as the gzip directive (one negotiation): an out-of-range weight still lists the coding.
  assert.equal(pick('br;q=2'), 'br');
  assert.equal(pick('gzip;q=0'), undefined);
});

test('joinUnderRoot never leaves root', () => {
  assert.equal(joinUnderRoot('/srv/www', '/a/../b'), '/srv/www/b');
  assert.equal(joinUnderRoot('/srv/www', '/../../etc/passwd'), '/srv/www/etc/passwd');
  assert.equal(joinUnderRoot('/srv/www', '/dir/'), '/srv/www/dir');
  assert.equal(joinUnderRoot('/', '/x/../y'), '/y');
  assert.equal(joinUnderRoot('/srv/www', '/'), '/srv/www');
  for (const bad of ['/a\\..\\b', '/x\0y'])
    assert.throws(
      () => joinUnderRoot('/srv/www', bad),
      (e: unknown) => e instanceof HttpError && e.status === 400,
    );
});
