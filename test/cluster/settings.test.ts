// The cluster flags: a Redis storage holds private keys, so it needs the secret they are encrypted with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterSettings, type ClusterFlags } from '../../src/cluster/settings.js';

const none: ClusterFlags = {
  storage: '',
  clusterListen: '',
  clusterAdvertise: '',
  clusterSecret: '',
  instanceId: 'a',
};

test('a redis storage needs -cluster-secret, and says where it can come from', () => {
  assert.throws(
    () => clusterSettings({ ...none, storage: 'redis://:pw@10.0.0.5:6379/0' }, '/data', '/'),
    (err: Error) =>
      /^-storage redis:\/\/:\*\*\*@10\.0\.0\.5:6379\/0 needs -cluster-secret \(or \$NODECADDY_CLUSTER_SECRET\)/.test(
        err.message,
      ) && !err.message.includes('pw'),
  );
  assert.throws(
    () => clusterSettings({ ...none, storage: 'redis://h:6379', clusterSecret: 'short' }, '/data', '/'),
    /-cluster-secret must be at least 16 characters/,
  );
  const ok = clusterSettings(
    { ...none, storage: 'unix:///run/redis.sock?prefix=site1', clusterSecret: 'sixteen characters' },
    '/data',
    '/',
  );
  assert.deepEqual(ok.storage, {
    kind: 'redis',
    url: 'unix:///run/redis.sock?prefix=site1',
    prefix: 'site1',
  });
  assert.equal(ok.secret, 'sixteen characters');
  // A file storage needs no secret, as before.
  assert.deepEqual(clusterSettings(none, '/data', '/').storage, { kind: 'file', dir: '/data' });
});
