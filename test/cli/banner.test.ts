import assert from 'node:assert/strict';
import { test } from 'node:test';
import { siteUrl } from '../../src/cli/banner.js';
import type { SiteAddress } from '../../src/core/site.js';

const site = (host: string, path = '', scheme = ''): SiteAddress => ({
  original: host,
  scheme,
  host,
  port: '0',
  path,
});

test('startup URLs are usable: catch-all hosts, bound interfaces, IPv6, default ports, wildcards', () => {
  // A catch-all site is reached at its listener's address: localhost when it listens everywhere.
  for (const host of ['', '*', '0.0.0.0', '::']) {
    assert.equal(siteUrl(site(host), '', 2015), 'http://localhost:2015', host);
    assert.equal(siteUrl(site(host), '0.0.0.0', 2015), 'http://localhost:2015', host);
  }
  assert.equal(siteUrl(site(''), '127.0.0.1', 8080), 'http://127.0.0.1:8080');
  assert.equal(siteUrl(site(''), '::1', 8080), 'http://[::1]:8080');
  assert.equal(siteUrl(site(''), '192.168.1.5', 8080), 'http://192.168.1.5:8080');
  assert.equal(siteUrl(site('', '/api'), '', 2015), 'http://localhost:2015/api');
  // Named hosts as they are; IPv6 in brackets; the scheme's default port left out.
  assert.equal(siteUrl(site('example.com'), '', 80), 'http://example.com');
  assert.equal(siteUrl(site('example.com', '', 'https'), '', 443), 'https://example.com');
  assert.equal(siteUrl(site('example.com'), '', 443), 'http://example.com:443');
  assert.equal(siteUrl(site('::1'), '', 8080), 'http://[::1]:8080');
  assert.equal(siteUrl(site(''), '', 80), 'http://localhost');
  // A wildcard site shows its pattern; a name on a loopback listener says where it can be reached.
  assert.equal(siteUrl(site('*.example.com'), '', 2015), 'http://*.example.com:2015');
  assert.equal(
    siteUrl(site('example.com'), '127.0.0.1', 2015),
    'http://example.com:2015 (only accessible on this machine)',
  );
  assert.equal(siteUrl(site('localhost'), '127.0.0.1', 2015), 'http://localhost:2015');
});
