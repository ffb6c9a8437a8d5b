// -workers 2 through the real process: every worker serves, reloads reach all of them or none, a killed
// worker is replaced, SIGTERM drains an in-flight download. Which worker served a connection is read from
// /proc (test/helpers/workers.ts), so the server carries no test hook.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import v8 from 'node:v8';
import { after, before, describe, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { bodiesPerWorker, childPids } from '../helpers/workers.js';

let dir: string;
let cleanup: () => void;
const BIG = 64 * 1024 * 1024;
let bigHash = '';

before(async () => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'one.txt'), 'one');
  writeFileSync(path.join(dir, 'two.txt'), 'two');
  // 64 MB that is not all one byte, so a reordered or repeated chunk shows in the hash.
  const hash = createHash('sha256');
  const out = createWriteStream(path.join(dir, 'big.bin'));
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < BIG / chunk.length; i++) {
    chunk.fill(i % 251);
    chunk.writeUInt32BE(i, 0);
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
  bigHash = hash.digest('hex');
});
after(() => cleanup());

/** A process's environment and command line, from /proc. */
const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
const site = (port: number, index: string) => `:${port} {\n\troot ${dir}\n\tindex ${index}\n}\n`;

function logLines(nc: Nodecaddy, text: string): string[] {
  return nc
    .stderr()
    .split('\n')
    .filter((l) => l.includes(text));
}

/** Waits until the primary has `n` live workers; returns their pids. */
async function workersOf(nc: Nodecaddy, n = 2): Promise<number[]> {
  let pids: number[] = [];
  await waitFor(() => (pids = childPids(nc.child.pid!)).length === n, 10_000, `${n} workers`);
  return pids;
}

/** Asserts that every worker serves `/` and that all of them answer `want`. */
async function everyWorkerServes(port: number, workers: number[], want: string): Promise<void> {
  const seen = await bodiesPerWorker(port, '/', workers);
  assert.deepEqual(
    [...seen.keys()].sort((a, b) => a - b),
    workers,
    'every worker served a connection',
  );
  for (const [pid, bodies] of seen) assert.deepEqual([...bodies], [want], `worker ${pid}`);
}

describe('-workers 2', () => {
  test('every worker serves; the listing is printed once; the pidfile holds the primary; run dir', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.serve');
    const pidfile = path.join(dir, 'nc.pid');
    writeFileSync(conf, site(port, 'one.txt'));
    const nc = await startNodecaddy(['-conf', conf, '-workers', '2', '-pidfile', pidfile]);
    let runDir: string;
    try {
      const workers = await workersOf(nc);
      await everyWorkerServes(port, workers, 'one');
      assert.equal(nc.stdout().match(/^Serving HTTP/gm)?.length, 1, nc.stdout());
      assert.equal(logLines(nc, '"msg":"serving"').length, 1);
      await waitFor(() => existsSync(pidfile), 5000, 'pidfile');
      assert.equal(readFileSync(pidfile, 'utf8').trim(), String(nc.child.pid));
      const envs = workers.map(environ);
      const dirs = new Set(envs.map((e) => e.find((v) => v.startsWith('NODECADDY_RUN_DIR='))?.slice(18)));
      assert.equal(dirs.size, 1, 'one run dir shared by all workers');
      runDir = [...dirs][0] ?? '';
      assert.ok(runDir && existsSync(runDir), `run dir ${runDir} exists`);
    } finally {
      assert.equal(await nc.stop(), 0);
    }
    assert.equal(existsSync(runDir), false, 'run dir removed at exit');
    assert.equal(existsSync(pidfile), false, 'pidfile removed at exit');
  });

  test('a reload reaches every worker; a broken one changes none', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.reload');
    writeFileSync(conf, site(port, 'one.txt'));
    const nc = await startNodecaddy(['-conf', conf, '-workers', '2']);
    try {
      const workers = await workersOf(nc);
      writeFileSync(conf, site(port, 'two.txt'));
      await waitFor(() => logLines(nc, '"msg":"config reloaded"').length === 1, 10_000, 'reload');
      await everyWorkerServes(port, workers, 'two');

      writeFileSync(conf, site(port, 'one.txt').replace('index', 'indexx'));
      await waitFor(() => logLines(nc, 'reload failed').length === 1, 10_000, 'failed reload');
      assert.match(logLines(nc, 'reload failed')[0], /Caddyfile\.reload:3 - Error during parsing/);
      await everyWorkerServes(port, workers, 'two');
      assert.equal(logLines(nc, '"msg":"config reloaded"').length, 1, 'logged once, by the primary');
    } finally {
      assert.equal(await nc.stop(), 0);
    }
  });

  test('a killed worker is replaced and serves the current config', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.kill');
    writeFileSync(conf, site(port, 'one.txt'));
    const nc = await startNodecaddy(['-conf', conf, '-workers', '2']);
    try {
      const [victim, survivor] = await workersOf(nc);
      writeFileSync(conf, site(port, 'two.txt'));
      await waitFor(() => logLines(nc, '"msg":"config reloaded"').length === 1, 10_000, 'reload');
      process.kill(victim, 'SIGKILL');
      await waitFor(() => logLines(nc, 'replacement worker serving').length === 1, 15_000, 'replacement');
      const workers = await workersOf(nc);
      assert.ok(workers.includes(survivor) && !workers.includes(victim), String(workers));
      assert.match(logLines(nc, 'worker exited unexpectedly')[0], /"signal":"SIGKILL"/);
      await everyWorkerServes(port, workers, 'two');
    } finally {
      assert.equal(await nc.stop(), 0);
    }
  });

  test('workers get two malloc arenas, a 4 MB young generation, synchronous array buffer sweeping, gc and a 2 GB heap unless the user set their own', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.memory');
    writeFileSync(conf, site(port, 'one.txt'));
    const plain = await startNodecaddy(['-conf', conf, '-workers', '2']);
    try {
      for (const pid of await workersOf(plain)) {
        assert.ok(environ(pid).includes('MALLOC_ARENA_MAX=2'));
        assert.ok(cmdline(pid).includes('--max-semi-space-size=4'), cmdline(pid).join(' '));
        assert.ok(cmdline(pid).includes('--no-concurrent-array-buffer-sweeping'), cmdline(pid).join(' '));
        assert.ok(cmdline(pid).includes('--expose-gc'), cmdline(pid).join(' '));
        // Only where V8's default limit (a quarter of the RAM, up to 4 GB) is above 2 GB.
        if (v8.getHeapStatistics().heap_size_limit > 2175 * 1024 ** 2)
          assert.ok(cmdline(pid).includes('--max-old-space-size=2047'), cmdline(pid).join(' '));
      }
    } finally {
      assert.equal(await plain.stop(), 0);
    }
    const own = await startNodecaddy(['-conf', conf, '-workers', '2'], {
      env: { MALLOC_ARENA_MAX: '1', NODE_OPTIONS: '--max-semi-space-size=16 --max-old-space-size=3000' },
    });
    try {
      for (const pid of await workersOf(own)) {
        assert.ok(environ(pid).includes('MALLOC_ARENA_MAX=1'));
        assert.ok(environ(pid).includes('NODE_OPTIONS=--max-semi-space-size=16 --max-old-space-size=3000'));
        assert.ok(!cmdline(pid).some((a) => a.startsWith('--max-')), cmdline(pid).join(' '));
      }
    } finally {
      assert.equal(await own.stop(), 0);
    }
  });

  test(
    'with -workers 1, the process that serves gets the same settings',
    { skip: typeof (process as { execve?: unknown }).execve !== 'function' && 'this Node cannot relaunch' },
    async () => {
      const port = await freePort();
      const conf = path.join(dir, 'Caddyfile.one');
      writeFileSync(conf, site(port, 'one.txt'));
      const nc = await startNodecaddy(['-conf', conf, '-workers', '1']);
      try {
        const pid = nc.child.pid!;
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        for (const flag of [
          '--max-semi-space-size=4',
          '--no-concurrent-array-buffer-sweeping',
          '--expose-gc',
        ])
          assert.ok(cmdline.includes(flag), cmdline.join(' '));
        assert.ok(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('MALLOC_ARENA_MAX=2'));
        const res = await request(port, '/');
        assert.equal(res.body, 'one');
      } finally {
        assert.equal(await nc.stop(), 0);
      }
    },
  );

  test('workers that keep dying young are restarted with a growing delay, and serve in the end', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.crashloop');
    writeFileSync(conf, site(port, 'one.txt'));
    const nc = await startNodecaddy(['-conf', conf, '-workers', '2']);
    try {
      // Kill the newest worker as soon as it serves: four quick deaths in a row (each lived < 5 s).
      const [first, survivor] = await workersOf(nc);
      let victim = first;
      for (let death = 1; death <= 4; death++) {
        process.kill(victim, 'SIGKILL');
        await waitFor(() => logLines(nc, 'worker exited unexpectedly').length === death, 10_000, 'exit');
        await waitFor(() => logLines(nc, 'replacement worker serving').length === death, 15_000, 'replaced');
        const workers = await workersOf(nc);
        assert.ok(workers.includes(survivor), 'the other worker lives on');
        victim = workers.find((pid) => pid !== survivor)!;
      }
      const delays = logLines(nc, 'worker exited unexpectedly').map((l) =>
        Number(/"restartInMs":(\d+)/.exec(l)?.[1]),
      );
      // The first quick death restarts at once, the next ones after 100, 200, 400 ms.
      assert.deepEqual(delays, [0, 100, 200, 400]);
      assert.equal((await request(port, '/')).body, 'one');
    } finally {
      assert.equal(await nc.stop(), 0);
    }
  });

  test('SIGTERM drains an in-flight 64 MB download, then every process exits', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.term');
    writeFileSync(conf, site(port, 'one.txt'));
    const nc = await startNodecaddy(['-conf', conf, '-workers', '2', '-grace', '30s']);
    const workers = await workersOf(nc);
    const download = await pausedDownload(port, '/big.bin');
    nc.child.kill('SIGTERM');
    await waitFor(
      () =>
        request(port, '/', { timeoutMs: 2000 }).then(
          () => false,
          () => true,
        ),
      10_000,
      'the listener to close',
    );
    const { bytes, sha256 } = await download.resume();
    assert.equal(bytes, BIG);
    assert.equal(sha256, bigHash);
    assert.equal(await nc.exited, 0);
    for (const pid of workers) assert.equal(existsSync(`/proc/${pid}`), false, `worker ${pid} exited`);
  });
});

/** Starts a download and stops reading after the first chunk; resume() reads and hashes the rest. */
function pausedDownload(
  port: number,
  p: string,
): Promise<{ resume: () => Promise<{ bytes: number; sha256: string }> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        const end = new Promise<{ bytes: number; sha256: string }>((done, fail) => {
          res.on('end', () => done({ bytes, sha256: hash.digest('hex') }));
          res.on('error', fail);
        });
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        res.once('data', () => {
          res.pause();
          resolve({ resume: () => (res.resume(), end) });
        });
      })
      .on('error', reject);
  });
}
