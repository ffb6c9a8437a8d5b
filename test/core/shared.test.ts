// Units shared by several directives: path matching, forwarding headers, header rules, upstream policies.

import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import type { RequestContext } from '../../src/core/context.js';
import { appendForwardedFor, clientIp, withoutHopByHop } from '../../src/core/forwarded.js';
import { applyHeaderRules, objectHeaderBag, parseHeaderRule } from '../../src/core/headerrules.js';
import { pathMatches } from '../../src/core/pathmatch.js';
import {
  createPolicy,
  selectHost,
  UpstreamHost,
  type SelectionInput,
} from '../../src/core/upstream/index.js';

describe('pathMatches (Caddy v1 Path.Matches)', () => {
  const cases: [string, string, boolean][] = [
    ['/anything', '/', true],
    ['/api', '/api', true],
    ['/api/x', '/api', true],
    ['/apix', '/api', true],
    ['/api', '/api/', false],
    ['/api/', '/api/', true],
    ['/API/x', '/api', false],
    ['/a//api/../api/x', '/a/api', true],
    ['/other', '/api', false],
  ];
  for (const [path, base, want] of cases) {
    test(`${path} under ${base}: ${want}`, () => assert.equal(pathMatches(path, base), want));
  }
});

describe('forwarding headers', () => {
  test('hop-by-hop and Connection-named fields are dropped, others kept', () => {
    const out = withoutHopByHop({
      connection: 'keep-alive, X-Secret',
      'keep-alive': 'timeout=5',
      'x-secret': '1',
      upgrade: 'websocket',
      te: 'trailers',
      'x-kept': 'yes',
      host: 'a',
    });
    assert.deepEqual({ ...out }, { 'x-kept': 'yes', host: 'a' }); // out has no prototype
  });
  test('X-Forwarded-For is appended, never replaced', () => {
    assert.equal(appendForwardedFor(undefined, '1.2.3.4'), '1.2.3.4');
    assert.equal(appendForwardedFor('9.9.9.9', '1.2.3.4'), '9.9.9.9, 1.2.3.4');
    assert.equal(appendForwardedFor(['9.9.9.9', '8.8.8.8'], '1.2.3.4'), '9.9.9.9, 8.8.8.8, 1.2.3.4');
    assert.equal(clientIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(clientIp('::1'), '::1');
  });
});

describe('header rules', () => {
  const ctx = {} as RequestContext;
  test('set, add, remove and regex replace, in order', () => {
    const headers: http.OutgoingHttpHeaders = {
      'x-old': 'a',
      server: 'backend',
      location: 'http://in:8080/x',
    };
    const rules = [
      parseHeaderRule(['X-New', 'v']),
      parseHeaderRule(['+X-Old', 'b']),
      parseHeaderRule(['-Server']),
      parseHeaderRule(['Location', '^http://in:8080', 'https://out']),
    ];
    applyHeaderRules(rules, ctx, objectHeaderBag(headers));
    assert.deepEqual(headers, { 'x-old': ['a', 'b'], 'x-new': 'v', location: 'https://out/x' });
  });
  test('a bare name takes the given default value; skipEmpty drops empty values', () => {
    const headers: http.OutgoingHttpHeaders = {};
    applyHeaderRules(
      [parseHeaderRule(['X-A'], 'X-A'), parseHeaderRule(['X-B', ''])],
      ctx,
      objectHeaderBag(headers),
      {
        skipEmpty: true,
      },
    );
    assert.deepEqual(headers, { 'x-a': 'X-A' });
  });
  test('bad rules are refused with a reason', () => {
    assert.throws(() => parseHeaderRule(['+X', '(', 'y']), /prefixes/);
    assert.throws(() => parseHeaderRule(['X', '(', 'y']), /invalid regular expression/);
    assert.throws(() => parseHeaderRule(['-']), /name missing/);
  });
});

describe('upstream policies', () => {
  const input = (over: Partial<SelectionInput> = {}): SelectionInput => ({
    ip: '10.0.0.1',
    uri: '/x',
    header: () => undefined,
    ...over,
  });
  const pool = () => [new UpstreamHost('a'), new UpstreamHost('b'), new UpstreamHost('c')];

  test('round_robin starts at the second host and cycles, skipping unavailable hosts', () => {
    const hosts = pool();
    const p = createPolicy('round_robin');
    const seq = Array.from({ length: 6 }, () => p.select(hosts, input())!.name);
    assert.deepEqual(seq, ['b', 'c', 'a', 'b', 'c', 'a']);
    hosts[1].unhealthy = true;
    assert.deepEqual(
      Array.from({ length: 4 }, () => p.select(hosts, input())!.name),
      ['c', 'a', 'c', 'a'],
    );
  });
  test('least_conn picks the idle host', () => {
    const hosts = pool();
    hosts[0].acquire();
    hosts[2].acquire();
    for (let i = 0; i < 20; i++) assert.equal(createPolicy('least_conn').select(hosts, input())!.name, 'b');
  });
  test('ip_hash, uri_hash and header are sticky; header falls back to round robin', () => {
    const hosts = pool();
    for (const [name, arg, a, b] of [
      ['ip_hash', undefined, input({ ip: '1.1.1.1' }), input({ ip: '2.2.2.9' })],
      ['uri_hash', undefined, input({ uri: '/a' }), input({ uri: '/zz' })],
      ['header', 'X-User', input({ header: () => 'alice' }), input({ header: () => 'bob' })],
    ] as const) {
      const p = createPolicy(name, arg);
      const first = p.select(hosts, a)!.name;
      const other = p.select(hosts, b)!.name;
      for (let i = 0; i < 10; i++) {
        assert.equal(p.select(hosts, a)!.name, first, name);
        assert.equal(p.select(hosts, b)!.name, other, name);
      }
    }
    const p = createPolicy('header', 'X-User');
    assert.deepEqual([p.select(hosts, input())!.name, p.select(hosts, input())!.name], ['b', 'c']);
    assert.equal(createPolicy('header').select(hosts, input()), undefined);
  });
  test('first, random over available hosts, and a single down host selects nothing', () => {
    const hosts = pool();
    hosts[0].unhealthy = true;
    assert.equal(createPolicy('first').select(hosts, input())!.name, 'b');
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(createPolicy('random').select(hosts, input())!.name);
    assert.deepEqual([...seen].sort(), ['b', 'c']);
    const one = [new UpstreamHost('solo')];
    one[0].unhealthy = true;
    assert.equal(selectHost(createPolicy('random'), one, input()), undefined);
    assert.throws(() => createPolicy('fastest'), /unknown policy 'fastest'/);
  });
  test('passive health: max_fails within fail_timeout; max_conns', () => {
    const h = new UpstreamHost('a', { maxFails: 2, failTimeoutMs: 60_000, maxConns: 1 });
    h.recordFailure();
    assert.equal(h.isDown(), false);
    h.recordFailure();
    assert.equal(h.isDown(), true);
    const off = new UpstreamHost('b', { maxFails: 1, failTimeoutMs: 0, maxConns: 1 });
    off.recordFailure();
    assert.equal(off.isDown(), false, 'fail_timeout 0 counts nothing');
    const release = off.acquire();
    assert.equal(off.available(), false);
    release();
    release();
    assert.equal(off.conns, 0);
  });
});
