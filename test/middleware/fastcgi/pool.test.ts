// The connection pool against a FastCGI peer that schedules connections as php-fpm does (fake-fpm.ts: php-fpm
// cannot be made to show these states on demand): queueing, hand-over, probes, ageing and idle expiry.
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, test } from 'node:test';
import type { ExchangeHandlers, FcgiConnection } from '../../../src/middleware/fastcgi/connection.js';
import {
  ConnectError,
  FcgiPool,
  sharedPool,
  type PoolOptions,
} from '../../../src/middleware/fastcgi/pool.js';
import { encodeRequest, RecordParser, RecordType } from '../../../src/middleware/fastcgi/protocol.js';
import { waitFor } from '../../helpers/http.js';
import { FakeFpm } from './fake-fpm.js';

/** One request on `conn` (no body); resolves with its STDOUT, rejects when no END_REQUEST comes within 5 s. */
function roundTrip(conn: FcgiConnection) {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
    const handlers: ExchangeHandlers = {
      onStdout: (d) => (out += d.toString()),
      onReadEnd: () => {},
      onStderr: () => {},
      onEnd: () => {
        clearTimeout(timer);
        resolve(out);
      },
      onError: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    };
    conn.begin(encodeRequest(1, [], true), handlers);
  });
}

/** acquire, one request, release. */
async function request(pool: FcgiPool, waitMs = 5000): Promise<string> {
  const conn = await pool.acquire(waitMs);
  try {
    return await roundTrip(conn);
  } finally {
    pool.release(conn, true);
  }
}

/** The record types in some received bytes. */
function recordTypes(chunks: Buffer[]): number[] {
  const types: number[] = [];
  const parser = new RecordParser();
  for (const c of chunks) parser.push(c, (rec) => types.push(rec.type));
  return types;
}

const OPTS: PoolOptions = { idleTimeoutMs: 5000, maxIdle: 8, maxAgeMs: 60_000 };

describe('FastCGI connection pool', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  async function setup(fpmOpts: Parameters<typeof FakeFpm.start>[0], opts: Partial<PoolOptions> = {}) {
    const fpm = await FakeFpm.start(fpmOpts);
    cleanup.push(() => fpm.close());
    const pool = new FcgiPool({ network: 'tcp', host: '127.0.0.1', port: fpm.port }, { ...OPTS, ...opts });
    cleanup.push(() => pool.close());
    return { fpm, pool };
  }
  /** A client of the same php-fpm that is not ours (another worker, another server) holding a worker. */
  async function foreignClient(fpm: FakeFpm): Promise<net.Socket> {
    const socket = net.connect(fpm.port, '127.0.0.1');
    cleanup.push(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  }

  test('requests beyond the free workers wait in the pool, never on a connection no worker has taken', async () => {
    const { fpm, pool } = await setup({ children: 2, hold: true });
    const results = Promise.all(Array.from({ length: 5 }, () => request(pool)));
    await waitFor(
      () => fpm.heldCount === 2 && pool.waitingCount === 3,
      5000,
      '2 requests running, 3 waiting',
    );
    assert.equal(fpm.taken.size, 2);
    for (const queued of fpm.queue)
      assert.deepEqual(recordTypes(queued.beforeTaken), [RecordType.GetValues], 'only the probe is queued');
    // Each answer frees a connection, and the oldest waiting request runs on it at once.
    for (let answered = 0; answered < 5; answered++) {
      await waitFor(() => fpm.heldCount > 0, 5000, 'a request to answer');
      fpm.releaseOne();
    }
    assert.deepEqual(await results, ['hello', 'hello', 'hello', 'hello', 'hello']);
    assert.deepEqual(
      fpm.all.filter((c) => c.served > 0).map((c) => c.served),
      [3, 2],
      'the two connections workers took ran every request',
    );
    assert.equal(pool.waitingCount, 0);
  });

  test('a waiting request takes a pending connection once a worker picks it up', async () => {
    const { fpm, pool } = await setup({ children: 1 });
    const foreign = await foreignClient(fpm);
    await waitFor(() => fpm.taken.size === 1, 5000, 'the foreign client to hold the worker');
    const result = request(pool);
    await waitFor(
      () => pool.pendingCount === 1 && pool.waitingCount === 1 && fpm.queue.length === 1,
      5000,
      'a pending connection in the listen queue',
    );
    foreign.destroy();
    assert.equal(await result, 'hello');
    assert.equal(pool.idleCount, 1);
  });

  test('a connection past maxAge closes after its request: a queued client gets the worker', async () => {
    // One worker; pool A keeps it busy without a pause, pool B (another process) waits in the listen queue.
    const { fpm, pool: a } = await setup({ children: 1 }, { maxAgeMs: 100 });
    const b = new FcgiPool({ network: 'tcp', host: '127.0.0.1', port: fpm.port }, OPTS);
    cleanup.push(() => b.close());
    let stop = false;
    let aRequests = 0;
    const loop = (async () => {
      while (!stop) {
        assert.equal(await request(a), 'hello');
        aRequests++;
      }
    })();
    await waitFor(() => aRequests > 0, 5000, 'pool A to run');
    try {
      assert.equal(await request(b, 5000), 'hello');
      assert.ok(aRequests > 1, 'pool A went on meanwhile');
    } finally {
      stop = true;
      b.close(); // B's idle connection holds the worker now; A's last request needs it
      await loop;
    }
    assert.ok(a.dialed >= 2, `pool A redialed (${a.dialed} connections)`);
  });

  test('an application that never answers the probe still gets requests, after probeGraceMs', async () => {
    const { fpm, pool } = await setup({ children: 1, ignoreProbes: true }, { probeGraceMs: 50 });
    assert.equal(await request(pool), 'hello');
    assert.equal(await request(pool), 'hello');
    assert.equal(fpm.all.length, 1);
  });

  test('no worker free within the wait: ConnectError, and the queued connection carried no request', async () => {
    const { fpm, pool } = await setup({ children: 1 });
    await foreignClient(fpm);
    await waitFor(() => fpm.taken.size === 1, 5000, 'the foreign client to hold the worker');
    await assert.rejects(pool.acquire(100), (err: Error) => {
      assert.ok(err instanceof ConnectError);
      assert.match(err.message, /was free within 100 ms/);
      return true;
    });
    assert.equal(pool.waitingCount, 0);
    assert.deepEqual(recordTypes(fpm.queue[0].beforeTaken), [RecordType.GetValues]);
  });

  test('an unreachable application: ConnectError at once', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const pool = new FcgiPool({ network: 'tcp', host: '127.0.0.1', port }, OPTS);
    cleanup.push(() => pool.close());
    await assert.rejects(pool.acquire(5000), /connecting to FastCGI 127\.0\.0\.1:\d+ failed/);
    assert.equal(pool.waitingCount, 0);
  });

  test('idle connections beyond maxIdle close at once, the others after idleTimeoutMs', async () => {
    const { fpm, pool } = await setup({ children: 3, hold: true }, { maxIdle: 1, idleTimeoutMs: 100 });
    const results = Promise.all(Array.from({ length: 3 }, () => request(pool)));
    await waitFor(() => fpm.heldCount === 3, 5000, '3 requests running');
    for (let i = 0; i < 3; i++) fpm.releaseOne();
    await results;
    assert.equal(pool.idleCount, 1);
    await waitFor(() => fpm.all.filter((c) => c.socket.destroyed).length === 2, 5000, '2 connections closed');
    await waitFor(() => pool.idleCount === 0, 5000, 'the idle connection to expire');
    await waitFor(() => fpm.all.every((c) => c.socket.destroyed), 5000, 'every connection closed');
  });

  test('a pool shared by configs keeps the largest keepalive among those holding it', async () => {
    const fpm = await FakeFpm.start({ children: 3, hold: true });
    cleanup.push(() => fpm.close());
    const ep = { network: 'tcp', host: '127.0.0.1', port: fpm.port } as const;
    const none = sharedPool(ep, { ...OPTS, maxIdle: 0 });
    const two = sharedPool(ep, { ...OPTS, maxIdle: 2 });
    // Only built (as by -validate): no pool exists yet.
    assert.throws(() => none.pool, /used before its config started/);
    none.retain();
    two.retain();
    assert.equal(none.pool, two.pool);
    cleanup.push(() => none.release());
    const results = Promise.all(Array.from({ length: 3 }, () => request(two.pool)));
    await waitFor(() => fpm.heldCount === 3, 5000, '3 requests running');
    for (let i = 0; i < 3; i++) fpm.releaseOne();
    await results;
    assert.equal(two.pool.idleCount, 2);
    two.release(); // the config with keepalive 2 is gone: keepalive 0 is the largest left
    assert.equal(none.pool.idleCount, 0);
    await waitFor(() => fpm.all.every((c) => c.socket.destroyed), 5000, 'every connection closed');
  });

  test('a connection given back while paused (slow client at the end) reads its next answer', async () => {
    const { pool } = await setup({ children: 1 });
    const first = await pool.acquire(1000);
    assert.equal(await roundTrip(first), 'hello');
    first.pause(); // the exchange paused it for a slow client and the response ended before 'drain'
    pool.release(first, true);
    assert.equal(pool.idleCount, 1);
    const again = await pool.acquire(1000);
    assert.equal(again, first, 'the idle connection is reused');
    assert.equal(await roundTrip(again), 'hello');
    assert.equal(pool.dialed, 1);
    pool.release(again, true);
  });
});
