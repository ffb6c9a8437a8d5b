// Load balancing through real backends: every policy, max_conns, passive and active health, retries.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../../helpers/http.js';
import { get, startBackend, startSite, type Backend, type Site } from './helpers.js';

let a: Backend, b: Backend, c: Backend;
const sites: Site[] = [];
const site = async (body: string): Promise<number> => {
  const s = await startSite(`127.0.0.1:0 {\n${body}\n}\n`);
  sites.push(s);
  return s.port;
};
const names = async (port: number, n: number, headers: Record<string, string> = {}, path = '/') => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await get(port, path, headers)).body);
  return out;
};

before(async () => {
  [a, b, c] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c')]);
});
after(async () => {
  await Promise.all(sites.map((s) => s.stop()));
  await Promise.all([a, b, c].map((x) => x.close()));
});

describe('proxy policies', () => {
  test('round_robin: the exact cycle, starting at the second host (as Caddy)', async () => {
    const port = await site(`proxy / ${a.addr} ${b.addr} ${c.addr} {\n policy round_robin\n}`);
    assert.deepEqual(await names(port, 6), ['b', 'c', 'a', 'b', 'c', 'a']);
  });

  test('first: always the first available host', async () => {
    const port = await site(`proxy / ${a.addr} ${b.addr} {\n policy first\n}`);
    assert.deepEqual(await names(port, 3), ['a', 'a', 'a']);
  });

  test('random: spreads over every host', async () => {
    const port = await site(`proxy / ${a.addr} ${b.addr} ${c.addr}`);
    const seen = new Set(await names(port, 60));
    assert.deepEqual([...seen].sort(), ['a', 'b', 'c']);
  });

  test('ip_hash and uri_hash are sticky; uri_hash spreads different URIs', async () => {
    const ip = await site(`proxy / ${a.addr} ${b.addr} ${c.addr} {\n policy ip_hash\n}`);
    assert.equal(new Set(await names(ip, 8)).size, 1);
    const uri = await site(`proxy / ${a.addr} ${b.addr} ${c.addr} {\n policy uri_hash\n}`);
    for (const p of ['/x', '/y', '/z?q=1'])
      assert.equal(new Set(await names(uri, 4, {}, p)).size, 1, `${p} sticks to one host`);
    const spread = new Set<string>();
    for (let i = 0; i < 30; i++) spread.add((await get(uri, `/p${i}`)).body);
    assert.ok(spread.size >= 2, 'different URIs reach different hosts');
  });

  test('header <name>: sticky per value, round robin without the header', async () => {
    const port = await site(`proxy / ${a.addr} ${b.addr} ${c.addr} {\n policy header X-User\n}`);
    for (const user of ['alice', 'bob', 'carol'])
      assert.equal(new Set(await names(port, 4, { 'X-User': user })).size, 1);
    assert.deepEqual(await names(port, 3), ['b', 'c', 'a']);
    // A header the client did not send is absent even when its name is an inherited property's.
    const inherited = await site(`proxy / ${a.addr} ${b.addr} ${c.addr} {\n policy header Constructor\n}`);
    assert.equal(new Set(await names(inherited, 3)).size, 3, 'round robin, not one hash of Object');
  });

  test('least_conn picks the idle backend while others hold slow requests', async () => {
    const held: http.ServerResponse[] = [];
    const slow = (name: string) =>
      startBackend(name, (req, res) => {
        res.setHeader('x-backend', name);
        if (req.url === '/slow') held.push(res);
        else res.end(name);
      });
    const [s1, s2, s3] = await Promise.all([slow('s1'), slow('s2'), slow('s3')]);
    try {
      const port = await site(`proxy / ${s1.addr} ${s2.addr} ${s3.addr} {\n policy least_conn\n}`);
      const pending = [get(port, '/slow'), get(port, '/slow')];
      await waitFor(() => held.length === 2, 10_000, 'two slow requests held');
      const busy = new Set([s1, s2, s3].filter((s) => s.hits > 0).map((s) => s.addr));
      const idle = [s1, s2, s3].find((s) => !busy.has(s.addr))!;
      for (let i = 0; i < 4; i++)
        assert.equal((await get(port, '/fast')).body, idle === s1 ? 's1' : idle === s2 ? 's2' : 's3');
      for (const r of held) r.end('done');
      await Promise.all(pending);
    } finally {
      await Promise.all([s1, s2, s3].map((s) => s.close()));
    }
  });

  test('max_conns: a full host is skipped; all full is a 502', async () => {
    const held: http.ServerResponse[] = [];
    const one = await startBackend('one', (_req, res) => held.push(res));
    try {
      const port = await site(`proxy / ${one.addr} {\n max_conns 1\n}`);
      const first = get(port, '/');
      await waitFor(() => held.length === 1, 10_000, 'first request held');
      assert.equal((await get(port, '/')).status, 502, 'the only host is full');
      held[0].end('ok');
      assert.equal((await first).body, 'ok');
      assert.equal(one.hits, 1);
    } finally {
      await one.close();
    }
  });
});

describe('proxy health and retries', () => {
  test('passive: a dead host leaves for fail_timeout and rejoins after it; try_duration retries elsewhere', async () => {
    const dead = await startBackend('dead');
    const deadAddr = dead.addr;
    await dead.close();
    const port = await site(
      `proxy / ${deadAddr} ${a.addr} {\n policy first\n fail_timeout 3s\n max_fails 1\n try_duration 2s\n try_interval 10ms\n}`,
    );
    // The first request fails over from the dead host to a within try_duration.
    assert.equal((await get(port, '/')).body, 'a');
    // A revived host on the same port stays out until fail_timeout has passed, then takes traffic again.
    const again = http.createServer((_q, res) => res.end('revived'));
    await new Promise<void>((r) => again.listen(Number(deadAddr.split(':')[1]), '127.0.0.1', r));
    try {
      assert.equal((await get(port, '/')).body, 'a', 'still marked down');
      await waitFor(async () => (await get(port, '/')).body === 'revived', 15_000, 'host to rejoin');
    } finally {
      again.closeAllConnections();
      await new Promise<void>((r) => again.close(() => r()));
    }
  });

  test('active: health_check takes a failing host out and brings it back', async () => {
    let healthy = true;
    const flaky = await startBackend('flaky', (req, res) => {
      if (req.url === '/health') {
        res.statusCode = healthy ? 200 : 503;
        res.end(healthy ? 'all good' : 'down');
      } else res.end('flaky');
    });
    // The other host passes by its body ("all good"), while a body without it would fail the check.
    const steady = await startBackend('steady', (req, res) =>
      res.end(req.url === '/health' ? 'all good' : 'steady'),
    );
    const liar = await startBackend('liar', (req, res) => res.end(req.url === '/health' ? 'fine' : 'liar'));
    try {
      const port = await site(
        `proxy / ${liar.addr} ${flaky.addr} ${steady.addr} {\n policy first\n health_check /health\n health_check_interval 50ms\n health_check_contains good\n}`,
      );
      await waitFor(async () => (await get(port, '/')).body === 'flaky', 10_000, 'flaky serving');
      healthy = false;
      await waitFor(async () => (await get(port, '/')).body === 'steady', 10_000, 'flaky taken out');
      healthy = true;
      await waitFor(async () => (await get(port, '/')).body === 'flaky', 10_000, 'flaky back');
      assert.ok(liar.hits > 0, 'liar was checked (and never chosen: its body lacks the string)');
    } finally {
      await Promise.all([flaky.close(), steady.close(), liar.close()]);
    }
  });

  test('all upstreams down: 502 in bounded time, also with retries', async () => {
    const gone = await startBackend('gone');
    const addr = gone.addr;
    await gone.close();
    const port = await site(`proxy / ${addr} {\n try_duration 300ms\n try_interval 50ms\n}`);
    const t0 = Date.now();
    const r = await get(port, '/');
    assert.equal(r.status, 502);
    assert.ok(Date.now() - t0 < 5000, 'answered within try_duration plus slack');
  });
});
