// fastcgi together with the other directives, through the real nodecaddy process (-workers 2) and a real
// php-fpm: the README's front controller (rewrite), PATH_INFO after a rewrite, basicauth's REMOTE_USER,
// gzip (whole pages and flushed streams), the access log, limits' 413, errors' page for a dead php-fpm, and
// the connection pool used from both workers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { rawRequest, request, waitFor } from '../../helpers/http.js';
import { connectionCounter, phpFpmSkip, startPhpFpm, type PhpFpm } from '../../helpers/phpfpm.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../../helpers/process.js';
import { bodiesPerWorker, childPids } from '../../helpers/workers.js';
import { writePhpApp } from './fixtures.js';

type Json = Record<string, unknown>;
const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../README.md');

/** The Caddyfile of the README's "Serve a PHP app" section, as written there. */
function readmePhpExample(): string {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('#### Serve a PHP app'));
  const block = /```\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the README has a Caddyfile in "Serve a PHP app"');
  return block[1];
}

// Scripts only these tests use. `hits.log` next to a script proves whether PHP ran.
const RECORD_HIT = `file_put_contents(__DIR__ . '/hits.log', $_SERVER['REQUEST_URI'] . "\\n", FILE_APPEND);`;
const EXTRA: Record<string, string> = {
  'page.php': `<?php header('Content-Type: text/html'); echo str_repeat('<p>hello from php</p>', 200);`,
  // Flushes a first line, then waits (at most 30 s) until the test creates the file named in ?f=.
  'flush.php': `<?php while (ob_get_level()) ob_end_flush(); ob_implicit_flush(true);
header('Content-Type: text/plain'); echo "first\\n"; flush();
for ($i = 0; $i < 3000 && !file_exists($_GET['f']); $i++) { usleep(10000); clearstatcache(); }
echo "second\\n";`,
  // A small body with a Content-Length, for the per-worker probe.
  'pid.php': `<?php $b = 'php ' . getmypid(); header('Content-Length: ' . strlen($b)); echo $b;`,
  'secret/mark.php': `<?php ${RECORD_HIT} header('Content-Type: application/json');
echo json_encode(['REMOTE_USER' => $_SERVER['REMOTE_USER'] ?? null]);`,
  'upload/hash.php': `<?php ${RECORD_HIT} $h = hash_init('sha256'); $n = 0; $in = fopen('php://input', 'rb');
while (!feof($in)) { $d = fread($in, 65536); if ($d === false || $d === '') break; $n += strlen($d); hash_update($h, $d); }
echo $n, ' ', hash_final($h);`,
  '502.html': '<h1>php is resting</h1>',
};

/** GET with the raw (maybe compressed) body. */
function getRaw(
  port: number,
  p: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

const hits = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];

describe(
  'fastcgi with rewrite, basicauth, gzip, log, limits, errors and -workers 2',
  { skip: phpFpmSkip() },
  () => {
    let fpm: PhpFpm;
    let nc: Nodecaddy;
    let counter: Awaited<ReturnType<typeof connectionCounter>>;
    let tmp: { dir: string; cleanup: () => void };
    let www = '';
    let accessLog = '';
    const port = { front: 0, routes: 0, gzip: 0, limits: 0, down: 0, counted: 0 };

    before(async () => {
      tmp = tempDir();
      www = path.join(tmp.dir, 'www');
      writePhpApp(www);
      for (const [name, text] of Object.entries(EXTRA)) {
        mkdirSync(path.dirname(path.join(www, name)), { recursive: true });
        writeFileSync(path.join(www, name), text);
      }
      accessLog = path.join(tmp.dir, 'access.log');
      fpm = await startPhpFpm({ children: 4 });
      counter = await connectionCounter(fpm.port);
      for (const k of Object.keys(port) as (keyof typeof port)[]) port[k] = await freePort();
      const dead = await freePort();
      const front = readmePhpExample()
        .replace('example.com', `127.0.0.1:${port.front}`)
        .replace('/srv/app/public', www)
        .replace('/run/php/php8.2-fpm.sock', fpm.socket);
      const conf = path.join(tmp.dir, 'Caddyfile');
      writeFileSync(
        conf,
        `${front}
127.0.0.1:${port.routes} {
  root ${www}
  rewrite /old /index.php/new{uri}
  rewrite /blog /index.php{path}
  basicauth /secret alice "open sesame"
  fastcgi / 127.0.0.1:${fpm.port} php
}
127.0.0.1:${port.gzip} {
  root ${www}
  gzip
  log / ${accessLog}
  fastcgi / 127.0.0.1:${fpm.port} php
}
127.0.0.1:${port.limits} {
  root ${www}
  limits {
    body /upload 1MB
  }
  fastcgi / 127.0.0.1:${fpm.port} php
}
127.0.0.1:${port.down} {
  root ${www}
  errors {
    502 502.html
  }
  fastcgi / 127.0.0.1:${dead} php
}
127.0.0.1:${port.counted} {
  root ${www}
  fastcgi / 127.0.0.1:${counter.port} php
}
`,
      );
      nc = await startNodecaddy(['-conf', conf, '-workers', '2'], { cwd: tmp.dir, listeners: 6 });
    });

    after(async () => {
      await nc?.stop();
      await counter?.close();
      await fpm?.stop();
      tmp?.cleanup();
    });

    describe('the README front controller', () => {
      test('an existing static file is served by the file server', async () => {
        const r = await request(port.front, '/style.css');
        assert.equal(r.status, 200);
        assert.equal(r.body, 'body { color: red }');
        assert.match(String(r.headers['content-type']), /^text\/css/);
        assert.ok(r.headers.etag, 'the file server answered (validators)');
      });

      test('a directory with an index runs that index', async () => {
        const r = await request(port.front, '/sub/');
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, 'sub index at /sub/index.php');
      });

      test('/ runs /index.php', async () => {
        const s = JSON.parse((await request(port.front, '/?a=1')).body) as Json;
        assert.equal(s.SCRIPT_NAME, '/index.php');
        assert.equal(s.QUERY_STRING, 'a=1');
      });

      test('any other path reaches /index.php: REQUEST_URI the original, the query kept', async () => {
        for (const uri of ['/route/a/b?x=1&y=2', '/missing.php?x=1&y=2', '/sub/nothing/here?x=1&y=2']) {
          const r = await request(port.front, uri);
          assert.equal(r.status, 200, `${uri}: ${r.body}`);
          const s = JSON.parse(r.body) as Json;
          assert.equal(s.front, true, uri);
          assert.equal(s.SCRIPT_NAME, '/index.php', uri);
          assert.equal(s.SCRIPT_FILENAME, path.join(www, 'index.php'), uri);
          assert.equal(s.PATH_INFO, '', uri);
          assert.equal(s.REQUEST_URI, uri);
          assert.equal(s.QUERY_STRING, 'x=1&y=2', uri);
        }
      });
    });

    describe('rewrite into a script path', () => {
      test('rewrite /old /index.php/new{uri}: PATH_INFO after the script, query from the rewrite', async () => {
        const r = await request(port.routes, '/old/page?q=1');
        assert.equal(r.status, 200, r.body);
        const s = JSON.parse(r.body) as Json;
        assert.equal(s.SCRIPT_NAME, '/index.php');
        assert.equal(s.SCRIPT_FILENAME, path.join(www, 'index.php'));
        assert.equal(s.PATH_INFO, '/new/old/page');
        // Caddy v1: DOCUMENT_URI is the script part only.
        assert.equal(s.DOCUMENT_URI, '/index.php');
        assert.equal(s.REQUEST_URI, '/old/page?q=1');
        assert.equal(s.QUERY_STRING, 'q=1');
      });

      test('rewrite /blog /index.php{path}: PATH_INFO from the rewritten path (Caddy v1 #2580)', async () => {
        const r = await request(port.routes, '/blog/2024/post?draft=1');
        assert.equal(r.status, 200, r.body);
        const s = JSON.parse(r.body) as Json;
        assert.equal(s.SCRIPT_NAME, '/index.php');
        assert.equal(s.PATH_INFO, '/blog/2024/post');
        assert.equal(s.REQUEST_URI, '/blog/2024/post?draft=1');
        // A target without a query keeps the request's query (Caddy v1's rewrite).
        assert.equal(s.QUERY_STRING, 'draft=1');
      });
    });

    describe('basicauth', () => {
      const hitsFile = () => path.join(www, 'secret', 'hits.log');
      const auth = (cred: string) => ({ Authorization: `Basic ${Buffer.from(cred).toString('base64')}` });

      test('without or with wrong credentials: 401 and php never runs', async () => {
        for (const headers of [{}, auth('alice:wrong'), auth('bob:open sesame')]) {
          const r = await request(port.routes, '/secret/mark.php', { headers });
          assert.equal(r.status, 401);
          assert.match(String(r.headers['www-authenticate']), /^Basic realm=/);
        }
        assert.deepEqual(hits(hitsFile()), []);
      });

      test('with credentials: REMOTE_USER is the user', async () => {
        const r = await request(port.routes, '/secret/mark.php?ok', { headers: auth('alice:open sesame') });
        assert.equal(r.status, 200, r.body);
        assert.equal((JSON.parse(r.body) as Json).REMOTE_USER, 'alice');
        assert.deepEqual(hits(hitsFile()), ['/secret/mark.php?ok']);
      });
    });

    describe('gzip and log', () => {
      const logLine = (needle: string) => async () => {
        let line: string | undefined;
        await waitFor(
          () => (line = hits(accessLog).find((l) => l.includes(needle))) !== undefined,
          10_000,
          `a log line with ${needle}`,
        );
        return line!;
      };

      test('a PHP page is compressed; the log has its status and compressed size', async () => {
        const r = await getRaw(port.gzip, '/page.php?z', { 'Accept-Encoding': 'gzip' });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.match(String(r.headers.vary), /Accept-Encoding/i);
        assert.equal(r.headers['content-length'], undefined);
        assert.equal(zlib.gunzipSync(r.raw).toString(), '<p>hello from php</p>'.repeat(200));
        assert.ok(r.raw.length < 1000, 'really compressed');
        const line = await logLine('/page.php?z')();
        assert.match(line, new RegExp(`"GET /page\\.php\\?z HTTP/1\\.1" 200 ${r.raw.length}$`));
      });

      test("the log has PHP's own status and the size", async () => {
        const r = await request(port.gzip, '/status.php?code=418');
        assert.equal(r.status, 418);
        assert.equal(r.body, 'status 418');
        const line = await logLine('/status.php?code=418')();
        assert.match(line, /"GET \/status\.php\?code=418 HTTP\/1\.1" 418 10$/);
      });

      test('flushed PHP output arrives chunk by chunk through gzip', async () => {
        const signal = path.join(tmp.dir, 'go-on');
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
          const req = http.get(
            {
              host: '127.0.0.1',
              port: port.gzip,
              path: `/flush.php?f=${encodeURIComponent(signal)}`,
              headers: { 'Accept-Encoding': 'gzip' },
              agent: false,
            },
            resolve,
          );
          req.on('error', reject);
        });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-encoding'], 'gzip');
        const gunzip = res.pipe(zlib.createGunzip());
        let text = '';
        const ended = new Promise<void>((resolve, reject) => {
          gunzip.on('end', resolve).on('error', reject);
        });
        gunzip.setEncoding('utf8').on('data', (d: string) => (text += d));
        // The first line must arrive while PHP still waits for the signal file.
        await waitFor(() => text === 'first\n', 15_000, 'the first flushed line');
        assert.equal(existsSync(signal), false);
        writeFileSync(signal, '');
        await ended;
        assert.equal(text, 'first\nsecond\n');
      });
    });

    describe('limits', () => {
      const hitsFile = () => path.join(www, 'upload', 'hits.log');

      test('an upload declared over the body limit is 413 at once and never reaches PHP', async () => {
        const head = `POST /upload/hash.php?big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${1024 * 1024 + 1}\r\n\r\n`;
        const answer = await rawRequest(port.limits, head + 'x'.repeat(1000), 10_000);
        assert.match(answer, /^HTTP\/1\.1 413 /);
        assert.deepEqual(hits(hitsFile()), []);
      });

      test('a chunked upload that grows over the limit is cut with 413; PHP never runs', async () => {
        const status = await new Promise<number | string>((resolve) => {
          const req = http.request(
            {
              host: '127.0.0.1',
              port: port.limits,
              path: '/upload/hash.php?chunked',
              method: 'POST',
              agent: false,
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          const chunk = Buffer.alloc(64 * 1024, 'z');
          let sent = 0;
          const pump = () => {
            while (sent < 2 * 1024 * 1024) {
              sent += chunk.length;
              if (!req.write(chunk)) return void req.once('drain', pump);
            }
            req.end();
          };
          pump();
        });
        // The server may close before the client has written everything: then the client sees a reset.
        assert.ok(status === 413 || status === 'ECONNRESET' || status === 'EPIPE', String(status));
        assert.deepEqual(hits(hitsFile()), []);
      });

      test('a smaller upload passes whole', async () => {
        const body = 'y'.repeat(512 * 1024);
        const r = await request(port.limits, '/upload/hash.php?small', { method: 'POST', body });
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, `${body.length} ${createHash('sha256').update(body).digest('hex')}`);
        assert.deepEqual(hits(hitsFile()), ['/upload/hash.php?small']);
      });
    });

    test('errors: php-fpm down renders the 502 page', async () => {
      const r = await request(port.down, '/echo.php');
      assert.equal(r.status, 502);
      assert.equal(r.body, EXTRA['502.html']);
      assert.match(String(r.headers['content-type']), /^text\/html/);
    });

    test('-workers 2: both workers use the pool; fewer connections than requests', async () => {
      const workers = await childPidsOf(nc);
      const seen = await bodiesPerWorker(port.counted, '/pid.php', workers);
      assert.deepEqual(
        [...seen.keys()].sort((a, b) => a - b),
        workers,
        'every worker served a php request',
      );
      for (const bodies of seen.values()) for (const b of bodies) assert.match(b, /^php \d+$/);
      // Then a burst over keep-alive connections (each worker's share lands on its pool).
      const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
      const before = counter.connections();
      try {
        const N = 120;
        const results = await Promise.all(
          Array.from({ length: N }, (_, i) => request(port.counted, `/echo.php?name=n${i}`, { agent })),
        );
        results.forEach((r, i) => {
          assert.equal(r.status, 200, r.body);
          assert.equal(r.body, `hello n${i}`);
        });
        const made = counter.connections() - before;
        assert.ok(made < N / 2, `${made} connections to php-fpm for ${N} requests`);
      } finally {
        agent.destroy();
      }
    });
  },
);

async function childPidsOf(nc: Nodecaddy): Promise<number[]> {
  let pids: number[] = [];
  await waitFor(() => (pids = childPids(nc.child.pid!)).length === 2, 10_000, '2 workers');
  return pids;
}
