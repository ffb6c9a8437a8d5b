// Hot reload through the real process: file edits and SIGUSR1, under load, with nothing dropped.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
// Bigger than what loopback socket buffers can hold, so a cut connection shows as missing bytes.
const BIG = 64 * 1024 * 1024;

before(() => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'stay'));
  mkdirSync(path.join(dir, 'extra'));
  writeFileSync(path.join(dir, 'stay', 'stay.txt'), 'stay');
  writeFileSync(path.join(dir, 'stay', 'other.txt'), 'other index');
  writeFileSync(path.join(dir, 'extra', 'index.html'), 'extra');
  writeFileSync(path.join(dir, 'extra', 'big.bin'), Buffer.alloc(BIG, 7));
});
after(() => cleanup());

/** Outcome lines in the process log: one per reload that did something (applied, or failed). */
function outcomes(nc: Nodecaddy): { reloaded: number; failed: number; lines: string[] } {
  const lines = nc.stderr().split('\n');
  return {
    reloaded: lines.filter((l) => l.includes('"msg":"config reloaded"')).length,
    failed: lines.filter((l) => l.includes('reload failed, still serving the previous config')).length,
    lines,
  };
}

/** Replaces the file the way many editors do: write a temp file, rename it over. */
function atomicWrite(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function refused(port: number): Promise<boolean> {
  try {
    await request(port, '/', { timeoutMs: 2000 });
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

/** Starts a download and pauses it after the first chunk; resume() reads the rest and counts bytes. */
function pausedDownload(port: number, p: string): Promise<{ resume: () => Promise<number> }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let bytes = 0;
      res.once('data', (c: Buffer) => {
        bytes += c.length;
        res.pause();
        resolve({
          resume: () =>
            new Promise((done, fail) => {
              res.on('data', (d: Buffer) => (bytes += d.length));
              res.on('end', () => done(bytes));
              res.on('error', fail);
              res.resume();
            }),
        });
      });
    });
    req.on('error', reject);
  });
}

describe('hot reload', () => {
  test('30 edits (valid and broken, adding and removing a port) under load: zero failed requests', async () => {
    const stayPort = await freePort();
    const extraPort = await freePort();
    const conf = path.join(dir, 'Caddyfile');
    const stay = (i: number, index = 'stay.txt') =>
      `# edit ${i}\n:${stayPort} {\n\troot ${path.join(dir, 'stay')}\n\tindex ${index}\n}\n`;
    const extra = `:${extraPort} {\n\troot ${path.join(dir, 'extra')}\n}\n`;
    writeFileSync(conf, stay(0));
    const nc = await startNodecaddy(['-conf', conf, '-grace', '10s']);

    // The load: keep-alive and fresh connections, until the edits are done (bounded at 90 s regardless).
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const deadline = Date.now() + 90_000;
    const worker = async (useAgent: boolean) => {
      while (running && Date.now() < deadline) {
        try {
          const r = await request(stayPort, '/', { agent: useAgent ? agent : false });
          if (r.status === 200 && (r.body === 'stay' || r.body === 'other index')) ok++;
          else failures.push(`${r.status} ${r.body}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const load = Promise.all([worker(true), worker(true), worker(true), worker(false), worker(false)]);

    try {
      let expected = { reloaded: 0, failed: 0 };
      let extraOpen = false;
      for (let i = 1; i <= 30; i++) {
        const kind = i % 5;
        let text: string;
        if (kind === 1) {
          text = stay(i) + extra;
          extraOpen = true;
        } else if (kind === 2) {
          text = stay(i) + (extraOpen ? extra : '') + `:${stayPort}/x {\n\troott nope\n}\n`; // unknown directive
        } else if (kind === 3) {
          text = stay(i);
          extraOpen = false;
        } else if (kind === 4) {
          text = stay(i).replace(/\n}\n$/, '\n'); // missing closing brace
        } else {
          text = stay(i, 'other.txt');
        }
        if (i % 2) atomicWrite(conf, text);
        else writeFileSync(conf, text);
        const broken = kind === 2 || kind === 4;
        expected = broken
          ? { ...expected, failed: expected.failed + 1 }
          : { ...expected, reloaded: expected.reloaded + 1 };
        await waitFor(
          () => {
            const o = outcomes(nc);
            return o.reloaded === expected.reloaded && o.failed === expected.failed;
          },
          10_000,
          `outcome of edit ${i} (${broken ? 'broken' : 'valid'})`,
        );
        if (kind === 1) {
          assert.equal((await request(extraPort, '/')).body, 'extra');
          assert.ok(
            outcomes(nc).lines.some((l) => l.includes(`"listenersOpened":[":${extraPort}"]`)),
            'log names the new port',
          );
        }
        if (kind === 3) await waitFor(() => refused(extraPort), 10_000, 'removed port to close');
      }
      const log = outcomes(nc);
      assert.ok(
        log.lines.some((l) => /Caddyfile:\d+ - Error during parsing: Unknown directive 'roott'/.test(l)),
        'broken edit logged with file:line',
      );
      assert.ok(
        log.lines.some((l) => l.includes(`"listenersClosed":[":${extraPort}"]`)),
        'log names the closed port',
      );
    } finally {
      running = false;
      await load;
      agent.destroy();
      await nc.stop();
    }
    assert.deepEqual(failures, []);
    assert.ok(ok > 100, `load ran (${ok} requests)`);
  });

  test('an in-flight download finishes when its port is removed; SIGUSR1 reloads without watching', async () => {
    const stayPort = await freePort();
    const extraPort = await freePort();
    const conf = path.join(dir, 'Caddyfile.usr1');
    const stay = `:${stayPort} {\n\troot ${path.join(dir, 'stay')}\n\tindex stay.txt\n}\n`;
    const extra = `:${extraPort} {\n\troot ${path.join(dir, 'extra')}\n}\n`;
    writeFileSync(conf, stay + extra);
    const nc = await startNodecaddy(['-conf', conf, '-watch=false', '-grace', '20s'], { listeners: 2 });
    try {
      const download = await pausedDownload(extraPort, '/big.bin');
      writeFileSync(conf, stay.replace('stay.txt', 'other.txt'));
      // Not watching: the edit alone changes nothing.
      assert.equal((await request(stayPort, '/')).body, 'stay');
      nc.child.kill('SIGUSR1');
      await waitFor(
        async () => (await request(stayPort, '/')).body === 'other index',
        10_000,
        'SIGUSR1 reload',
      );
      await waitFor(() => refused(extraPort), 10_000, 'removed port to stop accepting');
      assert.equal(await download.resume(), BIG, 'the in-flight download completed in full');
    } finally {
      assert.equal(await nc.stop(), 0);
    }
  });

  test('a reload that cannot bind a new port changes nothing (Caddy #2490)', async () => {
    const stayPort = await freePort();
    const freeNew = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, r));
    const takenPort = (blocker.address() as net.AddressInfo).port;
    const conf = path.join(dir, 'Caddyfile.bind');
    const stay = (index: string) => `:${stayPort} {\n\troot ${path.join(dir, 'stay')}\n\tindex ${index}\n}\n`;
    writeFileSync(conf, stay('stay.txt'));
    const nc = await startNodecaddy(['-conf', conf]);
    try {
      writeFileSync(
        conf,
        stay('other.txt') +
          `:${freeNew} {\n\troot ${path.join(dir, 'extra')}\n}\n:${takenPort} {\n\troot ${path.join(dir, 'extra')}\n}\n`,
      );
      await waitFor(() => outcomes(nc).failed === 1, 10_000, 'the failed reload');
      assert.ok(
        outcomes(nc).lines.some((l) => l.includes(`listen tcp :${takenPort}: address already in use`)),
      );
      assert.equal((await request(stayPort, '/')).body, 'stay', 'the old config still serves');
      assert.ok(await refused(freeNew), 'the port opened for the failed config was closed again');
      blocker.close();
      nc.child.kill('SIGUSR1');
      await waitFor(() => outcomes(nc).reloaded === 1, 10_000, 'the retried reload');
      assert.equal((await request(stayPort, '/')).body, 'other index');
      assert.equal((await request(freeNew, '/')).body, 'extra');
      assert.equal((await request(takenPort, '/')).body, 'extra');
    } finally {
      blocker.close();
      await nc.stop();
    }
  });

  test('SIGTERM drains an in-flight response, then exits 0; a second SIGINT exits at once', async () => {
    const port = await freePort();
    const conf = path.join(dir, 'Caddyfile.term');
    writeFileSync(conf, `:${port} {\n\troot ${path.join(dir, 'extra')}\n}\n`);
    const nc = await startNodecaddy(['-conf', conf, '-grace', '20s']);
    const download = await pausedDownload(port, '/big.bin');
    nc.child.kill('SIGTERM');
    await waitFor(() => refused(port), 10_000, 'listener to close on SIGTERM');
    assert.equal(await download.resume(), BIG);
    assert.equal(await nc.exited, 0);

    const nc2 = await startNodecaddy(['-conf', conf, '-grace', '60s']);
    const stuck = await pausedDownload(port, '/big.bin');
    void stuck;
    nc2.child.kill('SIGINT');
    await waitFor(() => nc2.stderr().includes('shutting down gracefully'), 10_000, 'first SIGINT');
    nc2.child.kill('SIGINT');
    assert.equal(await nc2.exited, 2);
  });
});
