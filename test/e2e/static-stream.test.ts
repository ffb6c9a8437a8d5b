// Big files (beyond the small-file cache) streamed through pooled read buffers, through the real nodecaddy
// process: intact under concurrency and across buffer boundaries, bounded for a paused reader, and cut
// (never passed off as whole) when the file shrinks mid-response.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

const MB = 1024 * 1024;
let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

/** Every 4 bytes their own offset (xor a seed): a misplaced or reused chunk shows in the hash. */
function content(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((i ^ seed) >>> 0, i);
  return b;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const A = content(7 * MB + 12_345, 0x5a5a5a5a);
const B = content(5 * MB + 3, 0x13572468);

before(async () => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'a.bin'), A);
  writeFileSync(path.join(dir, 'b.bin'), B);
  writeFileSync(path.join(dir, 'Caddyfile'), `127.0.0.1:0 {\n\troot ${dir}\n}\n`);
  // One worker: its process is the one whose reads we watch.
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1'], { cwd: dir });
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

function getBody(p: string, headers: Record<string, string> = {}, method = 'GET') {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
    (resolve, reject) => {
      http
        .request({ host: '127.0.0.1', port, path: p, method, headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        })
        .on('error', reject)
        .end();
    },
  );
}

/** Bytes the nodecaddy process has read with read(2) and friends so far. */
function bytesReadByServer(): number {
  const io = readFileSync(`/proc/${nc.child.pid}/io`, 'utf8');
  return Number(/^rchar: (\d+)$/m.exec(io)?.[1]);
}

/** Polls until the server's reads stop growing (the same for 300 ms), within 10 s. */
async function serverReadsSettle(): Promise<number> {
  const deadline = Date.now() + 10_000;
  let last = bytesReadByServer();
  let stableSince = Date.now();
  while (Date.now() - stableSince < 300) {
    if (Date.now() > deadline) throw new Error('the server never stopped reading');
    await new Promise((r) => setTimeout(r, 25));
    const now = bytesReadByServer();
    if (now !== last) [last, stableSince] = [now, Date.now()];
  }
  return last;
}

/** A GET whose reader pauses after the first bytes; resume() reads the rest and reports how it ended. */
function pausedGet(p: string) {
  return new Promise<{ resume: () => Promise<{ length: number; complete: boolean; sha: string }> }>(
    (resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        const hash = createHash('sha256');
        let length = 0;
        const ended = new Promise<{ length: number; complete: boolean; sha: string }>((done) => {
          res.on('data', (c: Buffer) => {
            hash.update(c);
            length += c.length;
          });
          res.on('error', () => undefined); // an early close shows as complete: false
          res.on('close', () => done({ length, complete: res.complete, sha: hash.digest('hex') }));
        });
        res.once('data', () => {
          res.pause();
          resolve({
            resume: () => {
              res.resume();
              return ended;
            },
          });
        });
      });
      req.on('error', reject);
    },
  );
}

describe('file server: streaming big files', () => {
  test('concurrent downloads of two big files are intact', async () => {
    const all = await Promise.all(
      [A, B, A, B, A, B].map((_, i) => getBody(i % 2 === 0 ? '/a.bin' : '/b.bin')),
    );
    all.forEach((r, i) => {
      const want = i % 2 === 0 ? A : B;
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(want.length));
      assert.equal(sha(r.body), sha(want), `download ${i}`);
    });
  });

  test('ranges across read-buffer boundaries, single and multipart; HEAD has no body', async () => {
    const one = await getBody('/a.bin', { Range: 'bytes=524287-3145729' });
    assert.equal(one.status, 206);
    assert.equal(sha(one.body), sha(A.subarray(524287, 3145730)));
    const tail = await getBody('/a.bin', { Range: 'bytes=-1000001' });
    assert.equal(sha(tail.body), sha(A.subarray(A.length - 1000001)));

    const multi = await getBody('/b.bin', { Range: 'bytes=0-9,1048570-2097160,5242879-' });
    assert.equal(multi.status, 206);
    const boundary = /boundary=(\S+)/.exec(String(multi.headers['content-type']))?.[1];
    assert.ok(boundary);
    const parts = multi.body
      .toString('latin1')
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((p) => Buffer.from(p.slice(p.indexOf('\r\n\r\n') + 4).replace(/\r\n$/, ''), 'latin1'));
    assert.equal(parts.length, 3);
    assert.deepEqual(parts[0], B.subarray(0, 10));
    assert.equal(sha(parts[1]), sha(B.subarray(1048570, 2097161)));
    assert.deepEqual(parts[2], B.subarray(5242879));
    assert.equal(Number(multi.headers['content-length']), multi.body.length);

    const head = await getBody('/a.bin', {}, 'HEAD');
    assert.equal(head.headers['content-length'], String(A.length));
    assert.equal(head.body.length, 0);
  });

  test('a paused reader: the server stops reading the file; then everything arrives intact', async () => {
    const big = content(64 * MB, 0x2468ace0);
    writeFileSync(path.join(dir, 'huge.bin'), big);
    const before = bytesReadByServer();
    const download = await pausedGet('/huge.bin');
    const read = (await serverReadsSettle()) - before;
    // Socket buffers on both sides plus two read buffers: a few MB, far from the file's 64.
    assert.ok(read < 24 * MB, `the server read ${read} bytes for a paused reader`);
    const done = await download.resume();
    assert.equal(done.complete, true);
    assert.equal(done.length, big.length);
    assert.equal(done.sha, sha(big));
  });

  test('a file that shrinks mid-response cuts the connection', async () => {
    writeFileSync(path.join(dir, 'shrinks.bin'), content(64 * MB, 7));
    const download = await pausedGet('/shrinks.bin');
    await serverReadsSettle();
    truncateSync(path.join(dir, 'shrinks.bin'), 32 * MB);
    const done = await download.resume();
    assert.equal(done.complete, false);
    assert.ok(done.length <= 32 * MB, `got ${done.length} bytes`);
  });
});
