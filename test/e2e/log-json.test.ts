// `log … { format json }` through the real process: Caddy 2's field names, credentials redacted, the
// upstream named, ipmask applied; and under concurrent load from two workers, with rotation, every line is one
// whole JSON object and every request is logged once.
import assert from 'node:assert/strict';
import { createReadStream, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

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

interface AccessEntry {
  level: string;
  ts: number;
  logger: string;
  msg: string;
  request: {
    remote_ip: string;
    remote_port: string;
    proto: string;
    method: string;
    host: string;
    uri: string;
    headers: Record<string, string[]>;
  };
  user_id: string;
  duration: number;
  size: number;
  status: number;
  resp_headers: Record<string, string[]>;
  upstream?: string;
}

async function readEntries(file: string): Promise<AccessEntry[]> {
  const out: AccessEntry[] = [];
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    try {
      out.push(JSON.parse(line) as AccessEntry);
    } catch {
      assert.fail(`not one JSON object in ${path.basename(file)}: ${line.slice(0, 80)}…(${line.length})`);
    }
  }
  return out;
}

/** `total` GETs over `concurrency` keep-alive connections; resolves with the count of 200s. */
async function burst(
  port: number,
  total: number,
  concurrency: number,
  headers: (i: number) => Record<string, string>,
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let ok = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: `/page.html?n=${i}`, agent, headers: headers(i) }, (res) => {
          if (res.statusCode === 200) ok++;
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        })
        .on('error', reject);
    });
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await one(next++);
      }),
    );
  } finally {
    agent.destroy();
  }
  return ok;
}

describe('log format json', () => {
  test("Caddy 2's fields: request, status, size, duration, headers with credentials redacted, upstream", async () => {
    const backend = http.createServer((_req, res) => res.writeHead(201, { 'x-from': 'backend' }).end('made'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const upstream = `http://127.0.0.1:${(backend.address() as { port: number }).port}`;
    const port = await freePort();
    writeFileSync(
      path.join(dir, 'fields.caddy'),
      `:${port} {\n\troot .\n\tproxy /api ${upstream}\n\tlog fields.log {\n\t\tformat json\n\t\tipmask 255.255.0.0\n\t}\n}\n`,
    );
    const nc = await startNodecaddy(['-conf', 'fields.caddy', '-workers', '1'], { cwd: dir });
    children.push(nc);
    try {
      const headers = {
        authorization: 'Basic c2VjcmV0OnNlY3JldA==',
        cookie: 'session=secret',
        'x-seq': 'one',
      };
      assert.equal((await request(port, '/page.html?a=1', { headers })).status, 200);
      assert.equal((await request(port, '/api/items', { method: 'POST', body: 'x' })).status, 201);
      const file = path.join(dir, 'fields.log');
      const entries = await waitFor(async () => {
        const all = await readEntries(file).catch(() => []);
        return all.length >= 2 ? all : undefined;
      });
      const page = entries.find((e) => e.request.uri === '/page.html?a=1')!;
      assert.equal(page.level, 'info');
      assert.equal(page.logger, 'http.log.access');
      assert.equal(page.msg, 'handled request');
      assert.ok(Math.abs(page.ts - Date.now() / 1000) < 60, String(page.ts));
      assert.deepEqual(
        { ...page.request, headers: undefined, remote_port: undefined },
        {
          remote_ip: '127.0.0.0',
          remote_port: undefined,
          proto: 'HTTP/1.1',
          method: 'GET',
          host: `127.0.0.1:${port}`,
          uri: '/page.html?a=1',
          headers: undefined,
        },
      );
      assert.match(page.request.remote_port, /^\d+$/);
      assert.deepEqual(page.request.headers.Authorization, ['REDACTED']);
      assert.deepEqual(page.request.headers.Cookie, ['REDACTED']);
      assert.deepEqual(page.request.headers['X-Seq'], ['one']);
      assert.equal(page.status, 200);
      assert.equal(page.size, 3);
      assert.ok(page.duration >= 0 && page.duration < 10, String(page.duration));
      assert.deepEqual(page.resp_headers['Content-Type'], ['text/html; charset=utf-8']);
      assert.equal(page.upstream, undefined);
      const api = entries.find((e) => e.request.uri === '/api/items')!;
      assert.equal(api.request.method, 'POST');
      assert.equal(api.status, 201);
      assert.equal(api.size, 4);
      assert.equal(api.upstream, upstream);
      assert.deepEqual(api.resp_headers['X-From'], ['backend']);
    } finally {
      backend.close();
    }
  });

  test('two workers under concurrent load with rotation: every line whole JSON, every request once', async () => {
    const TOTAL = 800;
    const pad = 'p'.repeat(6000);
    const port = await freePort();
    writeFileSync(
      path.join(dir, 'load.caddy'),
      `:${port} {\n\troot .\n\tlog / load.log {\n\t\tformat json\n\t\trotate_size 1\n\t\trotate_keep 0\n\t\trotate_age 0\n\t}\n}\n`,
    );
    const nc = await startNodecaddy(['-conf', 'load.caddy', '-workers', '2'], { cwd: dir });
    children.push(nc);
    // ~5 MB of lines: several rotations, raced by both workers.
    const ok = await burst(port, TOTAL, 16, (i) => ({ 'x-seq': String(i), 'x-pad': pad }));
    assert.equal(ok, TOTAL);
    assert.equal(await nc.stop(), 0); // a graceful stop writes the last batches
    const files = readdirSync(dir).filter((f) => f === 'load.log' || /^load-\d{4}-.*\.log$/.test(f));
    assert.ok(files.length >= 3, `rotated: ${files.join(', ')}`);
    const seen = new Map<string, number>();
    for (const f of files) {
      for (const e of await readEntries(path.join(dir, f))) {
        assert.equal(e.status, 200);
        assert.equal(e.request.headers['X-Pad']?.[0], pad);
        const seq = e.request.headers['X-Seq']?.[0] ?? '';
        assert.equal(e.request.uri, `/page.html?n=${seq}`);
        seen.set(seq, (seen.get(seq) ?? 0) + 1);
      }
    }
    assert.equal(seen.size, TOTAL);
    assert.ok([...seen.values()].every((c) => c === 1));
  });
});
