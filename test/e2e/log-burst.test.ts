// Access logging under load, through the real nodecaddy process: a burst of 100k keep-alive requests loses no
// line and leaves no partial one; two processes appending to and rolling one file lose nothing either.
import assert from 'node:assert/strict';
import { createReadStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
const children: Nodecaddy[] = [];

before(() => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'page.html'), 'ok\n');
});
after(async () => {
  for (const c of children) await c.stop();
  cleanup?.();
});

/** Sends `total` GETs over `concurrency` keep-alive connections; resolves with the count of 200s. */
async function burst(
  port: number,
  total: number,
  concurrency: number,
  headers: (i: number) => Record<string, string> = () => ({}),
): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let ok = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port, path: `/page.html?n=${i}`, agent, headers: headers(i) },
        (res) => {
          if (res.statusCode === 200) ok++;
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
    });
  const worker = async () => {
    while (next < total) await one(next++);
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return ok;
}

async function countLines(file: string, check: (line: string) => void): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    check(line);
    n++;
  }
  return n;
}

/**
 * The lean client for the big burst: keep-alive connections that each send requests in pipelined windows and
 * count the responses (an http.Agent costs more CPU per request than the server under test). Resolves with
 * the count of 200s.
 */
async function pipelinedBurst(
  port: number,
  total: number,
  connections: number,
  window = 50,
): Promise<number> {
  let next = 0;
  let ok = 0;
  const STATUS = 'HTTP/1.1 200 ';
  const conn = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let pending = 0;
      let carry = '';
      const send = () => {
        if (next >= total) {
          socket.end();
          return;
        }
        let batch = '';
        while (pending < window && next < total) {
          batch += `GET /page.html?n=${next++} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
          pending++;
        }
        socket.write(batch);
      };
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        const text = carry + d;
        let i = text.indexOf(STATUS);
        let last = 0;
        while (i >= 0) {
          ok++;
          pending--;
          last = i + STATUS.length;
          i = text.indexOf(STATUS, last);
        }
        carry = text.slice(Math.max(last, text.length - STATUS.length));
        if (pending === 0) send();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.on('connect', send);
    });
  await Promise.all(Array.from({ length: connections }, conn));
  return ok;
}

describe('log under load', () => {
  test('100k requests: 100k complete lines', async () => {
    const TOTAL = 100_000;
    writeFileSync(path.join(dir, 'Caddyfile'), `127.0.0.1:0 {\n  root .\n  log burst.log\n}\n`);
    const nc = await startNodecaddy(['-conf', 'Caddyfile'], { cwd: dir });
    children.push(nc);
    const ok = await pipelinedBurst(nc.ports[0], TOTAL, 16);
    assert.equal(ok, TOTAL);
    const file = path.join(dir, 'burst.log');
    const line = /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/page\.html\?n=(\d+) HTTP\/1\.1" 200 3$/;
    const seen = new Uint8Array(TOTAL);
    // Lines are written after the responses; wait for the last batches, then check every line.
    await waitFor(() => readFileSync(file).length >= TOTAL * 60, 30_000, 'the last batches');
    assert.equal(await nc.stop(), 0);
    const n = await countLines(file, (l) => {
      const m = line.exec(l);
      assert.ok(m, `a complete line: ${JSON.stringify(l)}`);
      seen[Number(m[1])]++;
    });
    assert.equal(n, TOTAL);
    assert.ok(
      seen.every((c) => c === 1),
      'every request exactly once',
    );
  });

  test('two processes appending to and rolling the same file: every line once, none broken', async () => {
    const PER = 400;
    const pad = 'p'.repeat(6000);
    const procs: Nodecaddy[] = [];
    for (const name of ['one', 'two']) {
      writeFileSync(
        path.join(dir, `${name}.caddy`),
        `127.0.0.1:0 {\n  root .\n  log / shared.log "{>X-Seq} {>X-Pad}" {\n    rotate_size 1\n    rotate_keep 0\n    rotate_age 0\n  }\n}\n`,
      );
      const nc = await startNodecaddy(['-conf', `${name}.caddy`], { cwd: dir });
      children.push(nc);
      procs.push(nc);
    }
    // ~4.8 MB in all from two writers at once: several rotations, raced by both processes.
    const counts = await Promise.all(
      procs.map((nc, p) => burst(nc.ports[0], PER, 8, (i) => ({ 'X-Seq': `${p}-${i}`, 'X-Pad': pad }))),
    );
    assert.deepEqual(counts, [PER, PER]);
    for (const nc of procs) assert.equal(await nc.stop(), 0);
    const files = readdirSync(dir).filter((f) => f === 'shared.log' || /^shared-\d{4}-.*\.log$/.test(f));
    assert.ok(files.length >= 4, `rotated several times: ${files.join(', ')}`);
    const seen = new Map<string, number>();
    for (const f of files) {
      const size = readFileSync(path.join(dir, f)).length;
      // A process may add one batch to a file another has just rotated away; never more than that.
      assert.ok(size <= 1.5 * 1024 * 1024, `${f} is ${size} bytes`);
      await countLines(path.join(dir, f), (l) => {
        const m = /^([01]-\d+) p{6000}$/.exec(l);
        assert.ok(m, `complete line in ${f}: ${l.slice(0, 40)}… (${l.length})`);
        seen.set(m[1], (seen.get(m[1]) ?? 0) + 1);
      });
    }
    assert.equal(seen.size, 2 * PER);
    assert.ok([...seen.values()].every((c) => c === 1));
  });
});
