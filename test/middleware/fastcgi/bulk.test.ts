// Big bodies both ways through the real nodecaddy process and php-fpm: a 50 MB multipart upload hashed by
// PHP, and 200 MB of output read slowly by the client while nodecaddy's RSS stays flat (backpressure).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../../helpers/http.js';
import { phpFpmSkip, startPhpFpm, type PhpFpm } from '../../helpers/phpfpm.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../../helpers/process.js';
import { writePhpApp } from './fixtures.js';

const MB = 1024 * 1024;

/** VmRSS of a process in bytes, from /proc (Linux). */
async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error('no VmRSS');
  return Number(m[1]) * 1024;
}

describe('fastcgi bulk transfers', { skip: phpFpmSkip() }, () => {
  let fpm: PhpFpm;
  let nc: Nodecaddy;
  let tmp: { dir: string; cleanup: () => void };
  let port = 0;

  before(async () => {
    tmp = tempDir();
    writePhpApp(path.join(tmp.dir, 'www'));
    fpm = await startPhpFpm({ children: 2 });
    port = await freePort();
    const conf = path.join(tmp.dir, 'Caddyfile');
    writeFileSync(conf, `127.0.0.1:${port} {\n  root www\n  fastcgi / unix:${fpm.socket} php\n}\n`);
    nc = await startNodecaddy(['-conf', conf], { cwd: tmp.dir });
  });

  after(async () => {
    await nc?.stop();
    await fpm?.stop();
    tmp?.cleanup();
  });

  test('a 50 MB multipart upload arrives intact (hashed by PHP)', async () => {
    const boundary = '----nodecaddy-test-boundary';
    const piece = randomBytes(MB);
    const size = 50 * MB;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nbig one\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const hash = createHash('sha256');
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          port,
          host: '127.0.0.1',
          path: '/upload.php',
          method: 'POST',
          agent: false,
          headers: {
            'Content-Type': `multipart/form-data; boundary=${boundary}`,
            'Content-Length': head.length + size + tail.length,
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      // Streamed with backpressure, never held whole.
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          const chunk = Buffer.from(piece);
          chunk.writeUInt32BE(sent / MB, 0); // every megabyte differs
          hash.update(chunk);
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end(tail);
      };
      req.write(head);
      pump();
    });
    assert.equal(result.status, 200, result.body);
    const got = JSON.parse(result.body) as Record<string, unknown>;
    assert.equal(got.name, 'big.bin');
    assert.equal(got.size, size);
    assert.equal(got.error, 0);
    assert.equal(got.note, 'big one');
    assert.equal(got.sha256, hash.digest('hex'));
  });

  test('200 MB of output to a slow reader: streamed as it comes, memory stays flat', async () => {
    const pid = nc.child.pid!;
    const baseline = await rss(pid);
    let peak = baseline;
    let received = 0;
    const hash = createHash('sha256');
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ port, host: '127.0.0.1', path: '/stream.php?mb=200', agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-type'], 'application/octet-stream');
        let sinceRest = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          hash.update(chunk);
          sinceRest += chunk.length;
          // A slow client: after every 8 MB, stop reading for a moment and sample nodecaddy's memory.
          if (sinceRest >= 8 * MB) {
            sinceRest = 0;
            res.pause();
            setTimeout(() => {
              rss(pid)
                .then((v) => {
                  peak = Math.max(peak, v);
                  res.resume();
                })
                .catch(reject);
            }, 50);
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    assert.equal(received, 200 * MB);
    const chunk = Buffer.from('0123456789abcdef'.repeat(65536));
    const expected = createHash('sha256');
    for (let i = 0; i < 200; i++) expected.update(chunk);
    assert.equal(hash.digest('hex'), expected.digest('hex'));
    assert.ok(
      peak - baseline < 64 * MB,
      `RSS grew by ${Math.round((peak - baseline) / MB)} MB while streaming 200 MB (baseline ${Math.round(baseline / MB)} MB)`,
    );
  });

  // The 200 MB test above ends with its connection paused for the slow reader; before the fix that connection
  // was parked paused and one of these requests waited forever on it (pool.test.ts shows it exactly).
  test('more concurrent requests than php-fpm workers: pooled connections never starve new ones', async () => {
    // Two workers; a naive keep-alive pool parks both on idle connections and the rest wait forever
    // (nginx with `keepalive` above pm.max_children, or Caddy 2, wedge this way).
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => request(port, `/sleep.php?ms=${20 + i}`, { timeoutMs: 20_000 })),
      );
      for (const r of results) assert.equal(r.body, 'before after');
    }
  });
});
