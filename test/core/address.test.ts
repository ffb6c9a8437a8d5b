import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressLabel, listenKey, parseAddress } from '../../src/core/address.js';

const defaults = { host: '', port: '2015', caseSensitivePath: false };

describe('parseAddress', () => {
  const cases: [string, { scheme: string; host: string; port: string; path: string }][] = [
    ['localhost', { scheme: '', host: 'localhost', port: '2015', path: '' }],
    ['localhost:1234', { scheme: '', host: 'localhost', port: '1234', path: '' }],
    ['localhost:', { scheme: '', host: 'localhost', port: '2015', path: '' }],
    [':8080', { scheme: '', host: '', port: '8080', path: '' }],
    ['http://example.com', { scheme: 'http', host: 'example.com', port: '80', path: '' }],
    ['https://example.com', { scheme: 'https', host: 'example.com', port: '443', path: '' }],
    ['example.com:80', { scheme: 'http', host: 'example.com', port: '80', path: '' }],
    ['example.com:443', { scheme: 'https', host: 'example.com', port: '443', path: '' }],
    [':http', { scheme: 'http', host: '', port: '80', path: '' }],
    ['a.com:https', { scheme: 'https', host: 'a.com', port: '443', path: '' }],
    ['Example.COM/Blog', { scheme: '', host: 'example.com', port: '2015', path: '/blog' }],
    ['example.com:9000/api/v1', { scheme: '', host: 'example.com', port: '9000', path: '/api/v1' }],
    ['/path', { scheme: '', host: '', port: '2015', path: '/path' }],
    ['*.example.com', { scheme: '', host: '*.example.com', port: '2015', path: '' }],
    ['[::1]:1234', { scheme: '', host: '::1', port: '1234', path: '' }],
    ['[::1]', { scheme: '', host: '::1', port: '2015', path: '' }],
    ['::1', { scheme: '', host: '::1', port: '2015', path: '' }],
    ['127.0.0.1:0', { scheme: '', host: '127.0.0.1', port: '0', path: '' }],
    ['http://localhost:8080/', { scheme: 'http', host: 'localhost', port: '8080', path: '' }],
  ];
  for (const [input, want] of cases) {
    test(input, () => {
      const got = parseAddress(input, defaults);
      assert.deepEqual({ scheme: got.scheme, host: got.host, port: got.port, path: got.path }, want);
      assert.equal(got.original, input);
    });
  }

  test('fills -host and -port defaults', () => {
    const a = parseAddress('/x', { host: 'Example.org', port: '9999', caseSensitivePath: false });
    assert.equal(a.host, 'example.org');
    assert.equal(a.port, '9999');
  });

  test('keeps path case when CASE_SENSITIVE_PATH', () => {
    assert.equal(parseAddress('a.com/Blog', { ...defaults, caseSensitivePath: true }).path, '/Blog');
  });

  const bad: [string, RegExp][] = [
    ['http://a.com:443', /\[http:\/\/a\.com:443\] scheme and port violate convention/],
    ['https://a.com:80', /scheme and port violate convention/],
    ['http://a.com:https', /scheme specified twice/],
    ['a.com:abc', /invalid port 'abc'/],
    ['a.com:70000', /invalid port '70000'/],
    ['ftp://a.com', /unsupported scheme 'ftp'/],
    ['[::1', /missing '\]'/],
    ['a{b}.com', /invalid host 'a{b}.com'/],
  ];
  for (const [input, re] of bad) {
    test(`rejects ${input}`, () => assert.throws(() => parseAddress(input, defaults), re));
  }
});

describe('labels and listen keys', () => {
  test('addressLabel', () => {
    assert.equal(addressLabel(parseAddress(':2015', defaults)), 'http://:2015');
    assert.equal(addressLabel(parseAddress('[::1]:80/x', defaults)), 'http://[::1]:80/x');
    assert.equal(addressLabel(parseAddress('https://a.com', defaults)), 'https://a.com:443');
  });
  test('listenKey', () => {
    assert.equal(listenKey(undefined, '2015'), ':2015');
    assert.equal(listenKey('127.0.0.1', '80'), '127.0.0.1:80');
    assert.equal(listenKey('::1', '80'), '[::1]:80');
  });
});
