// The cluster flags: what -storage accepts (a Redis storage holds private keys, so it needs the secret they are
// encrypted with), what -cluster-listen needs, and which addresses count as private (the relay goes without TLS
// only there).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterSettings, isPrivateAddress, type ClusterFlags } from '../../src/cluster/settings.js';

const none: ClusterFlags = {
  storage: '',
  clusterListen: '',
  clusterAdvertise: '',
  clusterSecret: '',
  instanceId: '',
};
const secret = 'a-cluster-secret-of-32-characters';
const settings = (flags: Partial<ClusterFlags>) => clusterSettings({ ...none, ...flags }, '/data', '/cwd');

test('no flags: the data folder, nothing shared', () => {
  const s = settings({});
  assert.deepEqual(s.storage, { kind: 'file', dir: '/data' });
  assert.equal(s.listen, undefined);
  assert.match(s.instanceId, /^[A-Za-z0-9._-]+-[0-9a-f]{6}$/);
});

test('-storage: file and redis URLs, with the key prefix', () => {
  assert.deepEqual(settings({ storage: 'file://certs' }).storage, { kind: 'file', dir: '/cwd/certs' });
  assert.deepEqual(
    settings({ storage: 'redis://:pw@10.0.0.5:6379/2?prefix=edge', clusterSecret: secret }).storage,
    {
      kind: 'redis',
      url: 'redis://:pw@10.0.0.5:6379/2?prefix=edge',
      prefix: 'edge',
    },
  );
  assert.throws(() => settings({ storage: 'consul://x' }), /expected file:\/\/\/folder, redis:\/\//);
  assert.throws(() => settings({ storage: 'redis://:pw@h:1/0?prefix=a}b' }), /prefix 'a}b'/);
  // A refused URL is quoted without its password.
  assert.throws(
    () => settings({ storage: 'redis://:hunter2@h:1/0?prefix=a}b' }),
    (err: Error) => !err.message.includes('hunter2'),
  );
});

test('-cluster-listen needs a shared storage, a secret, and an address others can dial', () => {
  const redis = 'redis://127.0.0.1:6379/0';
  assert.throws(
    () => settings({ clusterListen: '127.0.0.1:7443', clusterSecret: secret }),
    /needs a shared storage/,
  );
  assert.throws(() => settings({ storage: redis, clusterListen: '127.0.0.1:7443' }), /needs -cluster-secret/);
  assert.throws(
    () => settings({ storage: redis, clusterListen: '127.0.0.1:7443', clusterSecret: 'short' }),
    /at least 16 characters/,
  );
  assert.throws(
    () => settings({ storage: redis, clusterListen: ':7443', clusterSecret: secret }),
    /add -cluster-advertise/,
  );
  assert.throws(
    () => settings({ storage: redis, clusterListen: 'x', clusterSecret: secret }),
    /expected host:port/,
  );
  const s = settings({
    storage: redis,
    clusterListen: ':7443',
    clusterAdvertise: '10.0.0.5:7443',
    clusterSecret: secret,
  });
  assert.deepEqual(s.listen, { host: '0.0.0.0', port: 7443 });
  assert.equal(s.advertise, '10.0.0.5:7443');
  assert.equal(
    settings({ storage: redis, clusterListen: '[::1]:7443', clusterSecret: secret }).advertise,
    '[::1]:7443',
  );
});

test('private addresses', () => {
  for (const h of [
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.1',
    '192.168.1.1',
    '::1',
    '[fd00::1]',
    'fe80::1',
  ])
    assert.equal(isPrivateAddress(h), true, h);
  for (const h of ['172.32.0.1', '8.8.8.8', '2001:db8::1', 'example.com'])
    assert.equal(isPrivateAddress(h), false, h);
});

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
