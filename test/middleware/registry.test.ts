import assert from 'node:assert/strict';
import { test } from 'node:test';
import { directiveNames } from '../../src/middleware/index.js';

// Caddy v1.0.5's fixed order of the built-ins in scope (outermost first), with our `tunnel` beside proxy.
const CADDY_ORDER = [
  'root',
  'index',
  'symlinks', // ours: which symlinks the file server follows (config only)
  'bind',
  'limits',
  'timeouts',
  'tls',
  'dotfiles', // ours: config only, read by the file server and browse
  'hide', // ours, as Caddy 2's file_server hide
  'log',
  'rewrite',
  'ext',
  'gzip',
  'header',
  'errors',
  'basicauth',
  'redir',
  'status',
  'mime',
  'internal',
  'proxy',
  'tunnel',
  'fastcgi',
  'browse',
];

test('the registry follows Caddy v1 order', () => {
  const positions = directiveNames.map((name) => {
    const i = CADDY_ORDER.indexOf(name);
    assert.ok(i >= 0, `${name} has a place in the Caddy order`);
    return i;
  });
  assert.deepEqual(
    positions,
    [...positions].sort((a, b) => a - b),
  );
  assert.equal(new Set(directiveNames).size, directiveNames.length, 'no directive twice');
});

test('the foundation directives are registered', () => {
  for (const name of ['root', 'index', 'bind']) assert.ok(directiveNames.includes(name), name);
});

test('the standard directives are registered', () => {
  for (const name of [
    'limits',
    'timeouts',
    'rewrite',
    'ext',
    'header',
    'basicauth',
    'redir',
    'status',
    'mime',
    'internal',
  ])
    assert.ok(directiveNames.includes(name), name);
});
