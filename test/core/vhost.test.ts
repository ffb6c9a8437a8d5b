import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAddress } from '../../src/core/address.js';
import type { Site } from '../../src/core/site.js';
import { hostOnly, VhostRouter } from '../../src/core/vhost.js';

function site(address: string): Site {
  const a = parseAddress(address, { host: '', port: '2015', caseSensitivePath: true });
  return {
    label: address,
    handler: () => Promise.resolve(),
    config: {
      address: a,
      root: '/',
      indexFiles: [],
      bindHost: undefined,
      hiddenFiles: [],
      sourceFile: 'Caddyfile',
    },
  };
}

function route(router: VhostRouter, host: string | undefined, path = '/'): string | undefined {
  return router.route(host, path)?.label;
}

describe('VhostRouter', () => {
  test('exact host beats wildcard beats catch-all', () => {
    const r = new VhostRouter([site('a.example.com'), site('*.example.com'), site(':2015')]);
    assert.equal(route(r, 'a.example.com:2015'), 'a.example.com');
    assert.equal(route(r, 'B.Example.com'), '*.example.com');
    assert.equal(route(r, 'other.org'), ':2015');
    assert.equal(route(r, undefined), ':2015');
  });

  test('a wildcard covers one label only, replaced cumulatively from the left', () => {
    const r = new VhostRouter([site('*.example.com'), site('*.*.example.com')]);
    assert.equal(route(r, 'x.example.com'), '*.example.com');
    assert.equal(route(r, 'y.x.example.com'), '*.*.example.com');
    assert.equal(route(r, 'example.com'), undefined);
  });

  test('catch-all hosts: empty, * and 0.0.0.0', () => {
    assert.equal(route(new VhostRouter([site('*:2015')]), 'anything.test'), '*:2015');
    assert.equal(route(new VhostRouter([site('0.0.0.0:2015')]), 'anything.test'), '0.0.0.0:2015');
  });

  test('no match is undefined', () => {
    const r = new VhostRouter([site('a.com'), site('b.com')]);
    assert.equal(route(r, 'c.com'), undefined);
  });

  test('longest path prefix wins, byte-wise and case-sensitive', () => {
    const r = new VhostRouter([site('a.com'), site('a.com/api'), site('a.com/api/v2')]);
    assert.equal(route(r, 'a.com', '/'), 'a.com');
    assert.equal(route(r, 'a.com', '/api/x'), 'a.com/api');
    assert.equal(route(r, 'a.com', '/api/v2/x'), 'a.com/api/v2');
    assert.equal(route(r, 'a.com', '/apix'), 'a.com/api', 'not segment-aware, as Caddy v1');
    assert.equal(route(r, 'a.com', '/API/x'), 'a.com');
  });

  test('a host with only path sites falls through to the catch-all for other paths', () => {
    const r = new VhostRouter([site('a.com/only'), site(':2015')]);
    assert.equal(route(r, 'a.com', '/only/x'), 'a.com/only');
    assert.equal(route(r, 'a.com', '/else'), ':2015');
  });

  test('IPv6 hosts', () => {
    const r = new VhostRouter([site('[::1]:2015')]);
    assert.equal(route(r, '[::1]:2015'), '[::1]:2015');
  });

  test('hostOnly', () => {
    assert.equal(hostOnly('Example.COM:8080'), 'example.com');
    assert.equal(hostOnly('[::1]:80'), '::1');
    assert.equal(hostOnly(''), '');
  });
});
