// The storage several instances share, on a real redis-server: keys and their index written together, values
// sealed under the cluster secret (another secret is refused by name), locks that real processes contend for,
// taken over within the TTL from a holder killed with SIGKILL, and calls that fail at once while Redis is down
// and work again when it is back.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RedisStorage } from '../../src/certs/redis-storage.js';
import { LOCK_STALE_MS } from '../../src/certs/storage.js';
import { RedisLink, RedisUnavailable } from '../../src/cluster/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';
import { redisCli, startRedis, type Redis } from '../helpers/redis.js';

const LOCK_CHILD = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../helpers/redis-lock-child.js',
);
const SECRET = 'a test secret of the cluster';
const log = silentLogger();

let dir: string;
let cleanup: () => void;
let redis: Redis;
const links: RedisLink[] = [];
const children: ChildProcess[] = [];

before(async () => {
  ({ dir, cleanup } = tempDir('nodecaddy-redis-storage-'));
  redis = await startRedis(dir);
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(links.map((l) => l.close()));
  await redis.stop();
  cleanup();
});

/** A storage on its own prefix (or a given one), connected. */
async function storage(
  prefix = `t${randomBytes(4).toString('hex')}`,
  secret = SECRET,
): Promise<RedisStorage> {
  const link = new RedisLink({ url: `redis://127.0.0.1:${redis.port}`, prefix, log });
  links.push(link);
  await waitFor(() => link.up, 10_000, 'redis connected');
  return new RedisStorage({ link, secret, log });
}

async function cli(...args: string[]): Promise<string> {
  return (await redisCli(redis.port, args)).toString().trim();
}

interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  stdout(): string;
  stderr(): string;
}

function lockChild(args: string[]): Child {
  const child = spawn(process.execPath, [LOCK_CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, exited, stdout: () => out, stderr: () => err };
}

describe('keys', () => {
  test('store, load, list and delete nested keys; prefixes are per path component', async () => {
    const s = await storage('keys');
    assert.equal(await s.load('acme/a/sites/x/x.crt'), undefined);
    await s.store('acme/a/sites/x/x.crt', 'chain x');
    await s.store('acme/a/sites/x/x.key', Buffer.from('key x'));
    await s.store('acme/a/sites/xy/xy.crt', 'chain xy');
    await s.store('acme/ab/users/me/account.key', 'account');
    await s.store('top', 'top');
    assert.equal((await s.load('acme/a/sites/x/x.crt'))?.toString(), 'chain x');
    await s.store('acme/a/sites/x/x.crt', 'chain x renewed');
    assert.equal((await s.load('acme/a/sites/x/x.crt'))?.toString(), 'chain x renewed');
    assert.deepEqual(await s.list('acme/a'), [
      'acme/a/sites/x/x.crt',
      'acme/a/sites/x/x.key',
      'acme/a/sites/xy/xy.crt',
    ]);
    assert.deepEqual(await s.list('acme/a/sites/x/'), ['acme/a/sites/x/x.crt', 'acme/a/sites/x/x.key']);
    assert.deepEqual(await s.list('acme/a/sites/x/x.crt'), []);
    assert.equal((await s.list('')).length, 5);
    assert.ok((await s.modified('top'))! <= Date.now());
    // A folder goes with everything under it, and nothing beside it.
    await s.delete('acme/a/sites/x');
    assert.deepEqual(await s.list('acme/a'), ['acme/a/sites/xy/xy.crt']);
    assert.equal(await s.load('acme/a/sites/x/x.key'), undefined);
    await s.delete('top');
    await s.delete('never/stored');
    assert.deepEqual(await s.list(''), ['acme/a/sites/xy/xy.crt', 'acme/ab/users/me/account.key']);
    // Value and index, both under the hash tag; nothing else.
    assert.deepEqual((await cli('--scan', '--pattern', '{keys}*')).split('\n').sort(), [
      '{keys}/f/acme/a/sites/xy/xy.crt',
      '{keys}/f/acme/ab/users/me/account.key',
      '{keys}/idx',
    ]);
  });

  test('values are encrypted at rest; another cluster secret is refused by name', async () => {
    const prefix = `sealed${randomBytes(3).toString('hex')}`;
    const s = await storage(prefix);
    const pem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n';
    await s.store('acme/ca/sites/a/a.key', pem);
    const raw = await cli('HGET', `{${prefix}}/f/acme/ca/sites/a/a.key`, 'v');
    assert.ok(raw.length > 0);
    assert.doesNotMatch(Buffer.from(raw, 'base64').toString('latin1'), /PRIVATE KEY|MIGHAgEA/);
    assert.doesNotMatch(raw, /PRIVATE KEY/);
    const other = await storage(prefix, 'another secret, 16+ characters');
    await assert.rejects(other.load('acme/ca/sites/a/a.key'), /another -cluster-secret/);
    // A sealed value moved to another key does not open there either.
    await cli('HSET', `{${prefix}}/f/moved`, 'v', raw);
    await assert.rejects(s.load('moved'), /cannot be decrypted/);
    assert.equal((await s.load('acme/ca/sites/a/a.key'))?.toString(), pem);
  });

  test('keys that could mean something else are refused with the reason', async () => {
    const s = await storage();
    await assert.rejects(s.store('../x', 'v'), /contains \.\./);
    await assert.rejects(s.load('/abs'), /absolute/);
    await assert.rejects(s.store('a//b', 'v'), /empty or "\." part/);
    await assert.rejects(s.list('a/../..'), /contains \.\./);
  });
});

describe('locks', () => {
  test('two processes contending for one lock never hold it at the same time', async () => {
    const marks = path.join(dir, 'contend-marks');
    writeFileSync(marks, '');
    const prefix = `contend${randomBytes(3).toString('hex')}`;
    const args = ['contend', String(redis.port), prefix, 'cert_x', marks, '4', '60'];
    const [a, b] = [lockChild(args), lockChild(args)];
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0], a.stderr() + b.stderr());
    const lines = readFileSync(marks, 'utf8').trim().split('\n');
    assert.equal(lines.length, 16);
    for (let i = 0; i < lines.length; i += 2) {
      const [start, end] = [lines[i]?.split(' '), lines[i + 1]?.split(' ')];
      assert.equal(start?.[0], 'start', lines.join('\n'));
      assert.deepEqual(end, ['end', start?.[1]], lines.join('\n'));
    }
    assert.equal(new Set(lines.map((l) => l.split(' ')[1])).size, 2);
    assert.equal(await cli('EXISTS', `{${prefix}}/lock/cert_x`), '0');
  });

  test('a waiter gets the lock once it is released; released twice is harmless; abort gives up', async () => {
    const s = await storage('inproc');
    const release = await s.lock('*.Example.com');
    const ttl = Number(await cli('PTTL', '{inproc}/lock/wildcard_.example.com'));
    assert.ok(ttl > 0 && ttl <= LOCK_STALE_MS, `PTTL ${ttl}`);
    let second = false;
    const waiting = s.lock('*.example.com').then((r) => ((second = true), r));
    const ac = new AbortController();
    const aborted = s.lock('*.example.com', ac.signal);
    ac.abort();
    await assert.rejects(aborted, { name: 'AbortError', message: /example\.com/ });
    assert.equal(second, false);
    await release();
    await release();
    const release2 = await waiting;
    await release2();
    assert.equal(await cli('EXISTS', '{inproc}/lock/wildcard_.example.com'), '0');
    await assert.rejects(s.lock('x', AbortSignal.abort()), { name: 'AbortError' });
  });

  test('a live holder renews its lock before it expires', async () => {
    const s = await storage('renew');
    const release = await s.lock('cert_r');
    const first = Number(await cli('PTTL', '{renew}/lock/cert_r'));
    // Renewed every 3 s to the full TTL: the time left goes up again.
    let last = first;
    await waitFor(
      async () => {
        const now = Number(await cli('PTTL', '{renew}/lock/cert_r'));
        const renewed = now > last;
        last = now;
        return renewed;
      },
      LOCK_STALE_MS,
      'a renewal of the lock',
    );
    await release();
  });

  test('a holder killed with SIGKILL: its lock is taken over within the TTL', async () => {
    const prefix = `killed${randomBytes(3).toString('hex')}`;
    const holder = lockChild(['hold', String(redis.port), prefix, 'cert_k']);
    await waitFor(() => holder.stdout() === 'locked\n', 10_000, `the holder's lock (${holder.stderr()})`);
    holder.child.kill('SIGKILL');
    await holder.exited;
    assert.equal(await cli('EXISTS', `{${prefix}}/lock/cert_k`), '1', 'SIGKILL left the lock behind');
    const s = await storage(prefix);
    const release = await s.lock('cert_k', AbortSignal.timeout(LOCK_STALE_MS + 2_000));
    await release();
  });
});

describe('Redis down', () => {
  test('every call fails at once while Redis is down, and works again when it is back', async () => {
    const s = await storage('down');
    await s.store('a', 'value a');
    const release = await s.lock('held');
    await redis.stop();
    const calls: [string, () => Promise<unknown>][] = [
      ['load', () => s.load('a')],
      ['store', () => s.store('b', 'b')],
      ['delete', () => s.delete('a')],
      ['list', () => s.list('')],
      ['lock', () => s.lock('other')],
    ];
    for (const [what, call] of calls) {
      const started = Date.now();
      await assert.rejects(call(), RedisUnavailable, what);
      // A bound on behaviour, not a speed test: it fails instead of waiting for Redis (minutes by default).
      assert.ok(Date.now() - started < 1_000, `${what} took ${Date.now() - started} ms`);
    }
    redis = await startRedis(dir, redis.port);
    await waitFor(() => s.store('b', 'value b').then(() => true), 10_000, 'a store');
    assert.equal((await s.load('b'))?.toString(), 'value b');
    // The restarted Redis lost everything, the lock included: its holder takes it again at the next renewal.
    await waitFor(async () => (await cli('EXISTS', '{down}/lock/held')) === '1', LOCK_STALE_MS, 'the lock');
    await assert.rejects(s.lock('held', AbortSignal.timeout(1_500)), { name: 'AbortError' });
    await release();
    await (
      await s.lock('held', AbortSignal.timeout(5_000))
    )();
  });
});
