// The admin endpoint through the real process with two workers: /metrics adds up every worker's numbers,
// Host and Origin from elsewhere are refused (DNS rebinding), /config shows what runs, a port in use is a
// warning. Which worker served a connection is read from /proc (test/helpers/workers.ts).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admin, adminPort, sample, scrape } from '../helpers/admin.js';
import { request, waitFor } from '../helpers/http.js';
import { freePort, runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { childPids, getOnNewConnection, servingPid } from '../helpers/workers.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;
let adminAt: number;
let conf: string;

before(async () => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'page.html'), 'x'.repeat(1024));
  port = await freePort();
  conf = path.join(dir, 'Caddyfile');
  writeFileSync(conf, `:${port} {\n\troot ${dir}\n}\n`);
  nc = await startNodecaddy(['-conf', conf, '-workers', '2', '-admin', '127.0.0.1:0']);
  adminAt = await adminPort(nc);
});
after(async () => {
  await nc?.stop();
  cleanup?.();
});

describe('admin endpoint with -workers 2', () => {
  test('/metrics is the sum of every worker: requests, durations, sizes; process metrics per worker', async () => {
    let workers: number[] = [];
    await waitFor(() => (workers = childPids(nc.child.pid!)).length === 2, 10_000, 'two workers');
    // New connections until each worker has served some: a scrape of one worker would miss the others'.
    const perWorker = new Map<number, number>();
    const open: net.Socket[] = [];
    let ok = 0;
    try {
      while (ok < 200 && (perWorker.size < 2 || Math.min(...perWorker.values()) < 3)) {
        const { socket, body } = await getOnNewConnection(port, '/page.html');
        open.push(socket);
        assert.equal(body.length, 1024);
        ok++;
        const pid = servingPid(socket, port, workers);
        if (pid) perWorker.set(pid, (perWorker.get(pid) ?? 0) + 1);
      }
    } finally {
      for (const s of open) s.destroy();
    }
    assert.equal(perWorker.size, 2, 'both workers served');
    for (let i = 0; i < 3; i++)
      assert.equal((await request(port, '/page.html', { method: 'HEAD' })).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await request(port, '/missing')).status, 404);
    assert.equal((await request(port, '/page.html', { method: 'POST' })).status, 405);
    const total = ok + 6;
    const site = `http://:${port}`;
    const want = new Map([
      [sample('nodecaddy_http_requests_total', { site, method: 'GET', code: '200' }), ok],
      [sample('nodecaddy_http_requests_total', { site, method: 'HEAD', code: '200' }), 3],
      [sample('nodecaddy_http_requests_total', { site, method: 'GET', code: '404' }), 2],
      [sample('nodecaddy_http_requests_total', { site, method: 'POST', code: '405' }), 1],
      [sample('nodecaddy_http_request_duration_seconds_count', { site }), total],
      [sample('nodecaddy_http_request_duration_seconds_bucket', { site, le: '+Inf' }), total],
      [sample('nodecaddy_http_response_size_bytes_count', { site }), total],
      [sample('nodecaddy_http_requests_in_flight'), 0],
    ]);
    let samples = new Map<string, number>();
    // The last response's count lands when its 'close' fires in the worker: poll briefly.
    await waitFor(
      async () => {
        samples = await scrape(adminAt);
        return [...want].every(([k, v]) => samples.get(k) === v);
      },
      5000,
      'the expected sums',
    ).catch(() => assert.deepEqual(new Map([...want].map(([k]) => [k, samples.get(k)])), want));
    // Bodies: 1 KiB per GET of the page, nothing for HEAD, the error pages' bytes for the rest.
    const sizeSum = samples.get(sample('nodecaddy_http_response_size_bytes_sum', { site }))!;
    assert.ok(sizeSum > ok * 1024 && sizeSum < ok * 1024 + 3 * 1024, String(sizeSum));
    assert.equal(samples.get(sample('nodecaddy_http_response_size_bytes_bucket', { site, le: '256' })), 6);
    const workerLabels = [...samples.keys()]
      .map((k) => /^nodecaddy_process_resident_memory_bytes\{worker="([^"]+)"\}$/.exec(k)?.[1])
      .filter((w) => w !== undefined)
      .sort();
    assert.deepEqual(workerLabels, ['1', '2', 'primary']);
    assert.ok(samples.get(sample('nodecaddy_process_open_fds', { worker: '1' }))! > 0);
    assert.ok(samples.get(sample('nodecaddy_config_last_reload_success_timestamp_seconds'))! > 1.7e9);
  });

  test('a Host or an Origin that is not the endpoint is refused (DNS rebinding), ours are served', async () => {
    for (const host of [`127.0.0.1:${adminAt}`, `localhost:${adminAt}`, `[::1]:${adminAt}`]) {
      assert.equal((await admin(adminAt, '/metrics', { headers: { host } })).status, 200, host);
    }
    const rebound = await admin(adminAt, '/metrics', { headers: { host: `evil.example:${adminAt}` } });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /host not allowed: evil\.example/);
    assert.equal((await admin(adminAt, '/config', { headers: { host: 'localhost' } })).status, 403);
    const crossSite = await admin(adminAt, '/load', {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'text/plain' },
      body: ':1 {\n}\n',
    });
    assert.equal(crossSite.status, 403);
    assert.match(crossSite.body, /origin not allowed: http:\/\/evil\.example/);
    const sameSite = await admin(adminAt, '/upstreams', {
      headers: { origin: `http://localhost:${adminAt}` },
    });
    assert.equal(sameSite.status, 200);
    assert.deepEqual(JSON.parse(sameSite.body), []);
    assert.equal((await admin(adminAt, '/metrics', { method: 'DELETE' })).status, 405);
    assert.equal((await admin(adminAt, '/nothing')).status, 404);
  });

  test('/config: the loaded Caddyfile as -caddyfile-to-json prints it, its fingerprint and load time', async () => {
    const res = await admin(adminAt, '/config');
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body) as {
      file: string;
      fingerprint: string;
      loaded: string;
      config: unknown;
    };
    const converted = await runNodecaddy(['-caddyfile-to-json'], { stdin: `:${port} {\n\troot ${dir}\n}\n` });
    assert.deepEqual(body.config, JSON.parse(converted.stdout));
    assert.equal(body.file, conf);
    assert.match(body.fingerprint, /^[0-9a-f]{64}$/);
    assert.ok(Math.abs(Date.parse(body.loaded) - Date.now()) < 120_000, body.loaded);
  });
});

describe('response sizes', () => {
  test('a streamed body of unknown length is measured as sent when it is counted (log); requests always', async () => {
    const backend = http.createServer((_req, res) => {
      res.write('a'.repeat(3000));
      setImmediate(() => res.end('b'.repeat(2000)));
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const up = `127.0.0.1:${(backend.address() as net.AddressInfo).port}`;
    const [logged, bare] = [await freePort(), await freePort()];
    const file = path.join(dir, 'Caddyfile.stream');
    writeFileSync(
      file,
      `:${logged} {\n\tproxy / ${up}\n\tlog ${path.join(dir, 'stream.log')}\n}\n:${bare} {\n\tproxy / ${up}\n}\n`,
    );
    const other = await startNodecaddy(['-conf', file, '-workers', '1', '-admin', '127.0.0.1:0'], {
      listeners: 2,
    });
    try {
      const at = await adminPort(other);
      for (const p of [logged, bare]) {
        const res = await request(p, '/');
        assert.equal(res.body.length, 5000);
        assert.equal(res.headers['transfer-encoding'], 'chunked');
      }
      const samples = await waitFor(async () => {
        const s = await scrape(at);
        return (
          s.get(sample('nodecaddy_http_response_size_bytes_count', { site: `http://:${logged}` })) === 1 && s
        );
      });
      assert.equal(
        samples.get(sample('nodecaddy_http_response_size_bytes_sum', { site: `http://:${logged}` })),
        5000,
      );
      const site = `http://:${bare}`;
      assert.equal(
        samples.get(sample('nodecaddy_http_requests_total', { site, method: 'GET', code: '200' })),
        1,
      );
    } finally {
      await other.stop();
      backend.close();
    }
  });
});

describe('the admin address', () => {
  /** A Caddyfile of its own for a second server: one site on a free port, serving the same files. */
  async function otherSite(): Promise<{ conf: string; port: number }> {
    const p = await freePort();
    const file = path.join(dir, `Caddyfile.${p}`);
    writeFileSync(file, `:${p} {\n\troot ${dir}\n}\n`);
    return { conf: file, port: p };
  }

  test('a port in use is a warning: the server starts and serves', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const taken = (busy.address() as net.AddressInfo).port;
      const site = await otherSite();
      const other = await startNodecaddy([
        '-conf',
        site.conf,
        '-workers',
        '1',
        '-admin',
        `127.0.0.1:${taken}`,
      ]);
      try {
        assert.equal((await request(site.port, '/page.html')).status, 200);
        assert.match(other.stderr(), /admin endpoint not started: the port is in use/);
      } finally {
        await other.stop();
      }
    } finally {
      busy.close();
    }
  });

  test('-admin off wins over $NODECADDY_ADMIN: no endpoint; a bad value is a usage error', async () => {
    const site = await otherSite();
    const off = await startNodecaddy(['-conf', site.conf, '-workers', '1', '-admin', 'off'], {
      env: { NODECADDY_ADMIN: '127.0.0.1:0' },
    });
    try {
      assert.equal((await request(site.port, '/page.html')).status, 200);
      assert.doesNotMatch(off.stderr(), /admin endpoint/);
    } finally {
      await off.stop();
    }
    const bad = await runNodecaddy(['-admin', 'nowhere', '-validate'], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid value "nowhere" for flag -admin: expected host:port, :port or off/);
  });
});
