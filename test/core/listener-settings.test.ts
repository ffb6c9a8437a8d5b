import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import {
  DEFAULT_TIMEOUTS,
  applyListenerSettings,
  listenerSettings,
} from '../../src/core/listener-settings.js';
import type { Site, SiteConfig } from '../../src/core/site.js';

const site = (config: Partial<SiteConfig>) => ({ config }) as unknown as Site;

test('header size: the largest over the sites, a site without a limit counting as Node default', () => {
  assert.equal(
    listenerSettings([site({ maxHeaderBytes: 1024 }), site({ maxHeaderBytes: 4096 })]).maxHeaderSize,
    4096,
  );
  assert.equal(
    listenerSettings([site({ maxHeaderBytes: 1024 }), site({})]).maxHeaderSize,
    http.maxHeaderSize,
  );
  assert.equal(listenerSettings([site({ maxHeaderBytes: 1 << 20 }), site({})]).maxHeaderSize, 1 << 20);
});

test('timeouts: the smallest set value per kind wins, none (0) included; unset kinds take the defaults', () => {
  const s = listenerSettings([
    site({ timeouts: { read: 30_000, idle: 0 } }),
    site({ timeouts: { read: 10_000 } }),
    site({}),
  ]);
  assert.deepEqual(s.timeouts, { read: 10_000, header: DEFAULT_TIMEOUTS.header, write: 0, idle: 0 });
  assert.deepEqual(listenerSettings([site({})]).timeouts, DEFAULT_TIMEOUTS);
});

test('applied to a server: header deadline within the read deadline, idle none falls back to read', () => {
  const server = http.createServer();
  applyListenerSettings(server, {
    maxHeaderSize: 2048,
    timeouts: { read: 5000, header: 60_000, write: 0, idle: 0 },
  });
  assert.equal(server.requestTimeout, 5000);
  assert.equal(server.headersTimeout, 5000);
  assert.equal(server.keepAliveTimeout, 5000);
  assert.equal((server as { maxHeaderSize?: number }).maxHeaderSize, 2048);
});
