// The fastcgi directive end to end: the real nodecaddy process in front of a real php-fpm (TCP and unix
// socket pools), PHP scripts that echo, dump $_SERVER, read bodies, set statuses, headers and cookies,
// redirect, time out and die.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rawRequest, request, waitFor } from '../../helpers/http.js';
import { connectionCounter, phpFpmSkip, startPhpFpm, type PhpFpm } from '../../helpers/phpfpm.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../../helpers/process.js';
import { writePhpApp } from './fixtures.js';

type Json = Record<string, unknown>;

describe('fastcgi with php-fpm', { skip: phpFpmSkip() }, () => {
  let fpm: PhpFpm;
  let nc: Nodecaddy;
  let counter: Awaited<ReturnType<typeof connectionCounter>>;
  let counterNoKeep: Awaited<ReturnType<typeof connectionCounter>>;
  let tmp: { dir: string; cleanup: () => void };
  let www: string;
  // Listener ports: main site (TCP pool, plus /app on the unix pool), no split, timeouts, php-fpm down,
  // counted pool, two upstreams, counted pool without idle connections.
  const port = { main: 0, nosplit: 0, timeout: 0, down: 0, counted: 0, balanced: 0, nokeep: 0 };

  before(async () => {
    tmp = tempDir();
    www = path.join(tmp.dir, 'www');
    writePhpApp(www);
    fpm = await startPhpFpm({ children: 4 });
    counter = await connectionCounter(fpm.port);
    counterNoKeep = await connectionCounter(fpm.port);
    for (const k of Object.keys(port) as (keyof typeof port)[]) port[k] = await freePort();
    const dead = await freePort();
    const conf = path.join(tmp.dir, 'Caddyfile');
    writeFileSync(
      conf,
      `127.0.0.1:${port.main} {
  root www
  fastcgi / 127.0.0.1:${fpm.port} php {
    except /static
    env APP_ENV testing
    env FROM_PLACEHOLDER {method}-{>X-Test}
  }
}
127.0.0.1:${port.main}/app {
  root www
  fastcgi / unix:${fpm.socket} php
}
127.0.0.1:${port.nosplit} {
  root www
  fastcgi / :${fpm.port} {
    ext .php
  }
}
127.0.0.1:${port.timeout} {
  root www
  fastcgi / tcp://127.0.0.1:${fpm.port} php {
    read_timeout 1s
  }
}
127.0.0.1:${port.down} {
  root www
  fastcgi /refused 127.0.0.1:${dead} php
  fastcgi /nosocket ${path.join(tmp.dir, 'missing.sock')} php
  fastcgi /blackhole 192.0.2.1:9000 php {
    connect_timeout 500ms
  }
}
127.0.0.1:${port.counted} {
  root www
  fastcgi / 127.0.0.1:${counter.port} php
}
127.0.0.1:${port.balanced} {
  root www
  fastcgi / 127.0.0.1:${fpm.port} php {
    upstream ${fpm.socket}
  }
}
127.0.0.1:${port.nokeep} {
  root www
  fastcgi / 127.0.0.1:${counterNoKeep.port} php {
    keepalive 0
  }
}
`,
    );
    nc = await startNodecaddy(['-conf', conf], { cwd: tmp.dir, listeners: 7 });
  });

  after(async () => {
    await nc?.stop();
    await counter?.close();
    await counterNoKeep?.close();
    await fpm?.stop();
    tmp?.cleanup();
  });

  /** GET with the body as bytes. */
  const getBytes = (p: number, uri: string) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: p, path: uri, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        })
        .on('error', reject);
    });

  const json = async (p: number, uri: string, opts?: Parameters<typeof request>[2]) => {
    const r = await request(p, uri, opts);
    assert.equal(r.status, 200, `${uri}: ${r.body}`);
    return JSON.parse(r.body) as Json;
  };

  test('a script runs and its output comes back', async () => {
    const r = await request(port.main, '/echo.php?name=php');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello php');
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  });

  test('the CGI parameters, with split and PATH_INFO', async () => {
    const s = await json(port.main, '/server.php/extra/path%20x?q=1&r=%2F', {
      headers: { 'X-Test': 'yes', Proxy: 'http://evil.example', 'Accept-Language': 'en' },
    });
    const expected: Record<string, string> = {
      PATH_INFO: '/extra/path x',
      PATH_TRANSLATED: path.join(www, 'extra/path x'),
      SCRIPT_NAME: '/server.php',
      SCRIPT_FILENAME: path.join(www, 'server.php'),
      DOCUMENT_URI: '/server.php',
      DOCUMENT_ROOT: www,
      REQUEST_URI: '/server.php/extra/path%20x?q=1&r=%2F',
      QUERY_STRING: 'q=1&r=%2F',
      REQUEST_METHOD: 'GET',
      REQUEST_SCHEME: 'http',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_NAME: '127.0.0.1',
      SERVER_PORT: String(port.main),
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_HOST: '127.0.0.1',
      REMOTE_USER: '',
      AUTH_TYPE: '',
      CONTENT_LENGTH: '0',
      CONTENT_TYPE: '',
      HTTP_HOST: `127.0.0.1:${port.main}`,
      HTTP_X_TEST: 'yes',
      HTTP_ACCEPT_LANGUAGE: 'en',
      APP_ENV: 'testing',
      FROM_PLACEHOLDER: 'GET-yes',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(s[k], v, k);
    assert.match(String(s.REMOTE_PORT), /^\d+$/);
    assert.match(String(s.SERVER_SOFTWARE), /^nodecaddy\/\d/);
    assert.equal(s.HTTP_PROXY, undefined, 'httpoxy: no HTTP_PROXY');
    assert.equal(s.HTTPS, undefined, 'no HTTPS on plain HTTP');
  });

  test('request headers named after inherited properties become their own parameters', async () => {
    // HTTP/1.0: a close-delimited body, read whole from the socket.
    const answer = await rawRequest(
      port.main,
      `GET /server.php HTTP/1.0\r\nHost: 127.0.0.1\r\n__proto__: p\r\nConstructor: c\r\nToString: t\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 200 /);
    const s = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Json;
    assert.equal(s.HTTP___PROTO__, 'p');
    assert.equal(s.HTTP_CONSTRUCTOR, 'c');
    assert.equal(s.HTTP_TOSTRING, 't');
  });

  test('split is case-sensitive and finds the first .php; no PATH_TRANSLATED without PATH_INFO', async () => {
    const s = await json(port.main, '/server.php');
    assert.equal(s.PATH_INFO, '');
    assert.equal(s.PATH_TRANSLATED, undefined);
    const nested = await json(port.main, '/server.php/a.php/b');
    assert.equal(nested.SCRIPT_NAME, '/server.php');
    assert.equal(nested.PATH_INFO, '/a.php/b');
  });

  test('a site path prefix is part of SCRIPT_NAME (unix socket pool)', async () => {
    const s = await json(port.main, '/app/server.php/x?y=1');
    assert.equal(s.SCRIPT_NAME, '/app/server.php');
    assert.equal(s.SCRIPT_FILENAME, path.join(www, 'server.php'));
    assert.equal(s.PATH_INFO, '/x');
    assert.equal(s.REQUEST_URI, '/app/server.php/x?y=1');
    assert.equal(s.FPM_POOL, 'unix');
  });

  test('without split the whole path is the script (Caddy v1 #2212 fixed)', async () => {
    const s = await json(port.nosplit, '/server.php?a=b');
    assert.equal(s.SCRIPT_NAME, '/server.php');
    assert.equal(s.SCRIPT_FILENAME, path.join(www, 'server.php'));
    assert.equal(s.PATH_INFO, '');
    assert.equal(s.QUERY_STRING, 'a=b');
    // Without `index`, a directory is not a script: the static server answers.
    assert.equal((await request(port.nosplit, '/style.css')).body, 'body { color: red }');
  });

  test('static files, directories with index.php, except, and what has no .php', async () => {
    const css = await request(port.main, '/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.body, 'body { color: red }', 'an existing non-PHP file is served statically');
    const root = await json(port.main, '/?from=root');
    assert.equal(root.front, true);
    assert.equal(root.SCRIPT_NAME, '/index.php');
    assert.equal(root.REQUEST_URI, '/?from=root');
    const sub = await request(port.main, '/sub/');
    assert.equal(sub.body, 'sub index at /sub/index.php');
    assert.equal((await request(port.main, '/noindex/readme.txt')).body, 'plain');
    // A path without .php and no file: not a script, so the static server's 404.
    assert.equal((await request(port.main, '/no/such/route')).status, 404);
    // A missing .php goes to php-fpm, which says 404 itself.
    const missing = await request(port.main, '/missing.php');
    assert.equal(missing.status, 404);
    assert.match(missing.body, /File not found/);
    // except: the PHP source under /static is never executed (and here not found statically either).
    assert.equal((await request(port.main, '/static/echo.php')).status, 404);
  });

  test('trailing dots and spaces do not reveal the source', async () => {
    const r = await request(port.main, '/echo.php.');
    assert.equal(r.body, 'hello world');
    const s = await request(port.main, '/echo.php%20');
    assert.equal(s.body, 'hello world');
  });

  test('POST bodies: form fields and raw JSON', async () => {
    const form = await json(port.main, '/post.php', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'a=1&b=two+words',
    });
    assert.deepEqual(form.post, { a: '1', b: 'two words' });
    assert.equal(form.method, 'POST');
    const raw = await json(port.main, '/post.php', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: '{"x":1}',
    });
    assert.equal(raw.raw, '{"x":1}');
    assert.equal(raw.method, 'PUT');
  });

  test('a chunked body gets its real CONTENT_LENGTH (spooled) and arrives whole', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 'z');
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { port: port.main, host: '127.0.0.1', path: '/hash.php', method: 'POST', agent: false },
        (res) => {
          let out = '';
          res.setEncoding('utf8').on('data', (d: string) => (out += d));
          res.on('end', () => resolve(out));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < data.length; i += 100_000) req.write(data.subarray(i, i + 100_000));
      req.end();
    });
    assert.equal(body, `${data.length} ${createHash('sha256').update(data).digest('hex')}`);
  });

  test('status codes, the Status header, headers, two cookies and a redirect', async () => {
    const teapot = await request(port.main, '/status-header.php');
    assert.equal(teapot.status, 418);
    assert.equal(teapot.headers.status, undefined, 'Status is not passed on as a header');
    for (const code of [201, 404, 503]) {
      const r = await request(port.main, `/status.php?code=${code}`);
      assert.equal(r.status, code);
      assert.equal(r.body, `status ${code}`, 'the application body, not an error page');
    }
    const h = await request(port.main, '/headers.php');
    assert.equal(h.headers['x-custom'], 'yes');
    assert.equal(h.headers['x-multi'], 'a, b');
    assert.deepEqual(h.headers['set-cookie'], ['first=one', 'second=two']);
    const moved = await request(port.main, '/redirect.php');
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.location, '/echo.php?name=redirected');
  });

  test('an answer that arrives whole goes out with its length; one PHP flushes in parts is chunked', async () => {
    const whole = await request(port.main, '/echo.php?name=length');
    assert.equal(whole.body, 'hello length');
    assert.equal(whole.headers['content-length'], String('hello length'.length));
    assert.equal(whole.headers['transfer-encoding'], undefined);
    const empty = await request(port.main, '/status.php?code=204');
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['content-length'], undefined);
    const streamed = await request(port.main, '/sleep.php?ms=50');
    assert.equal(streamed.body, 'before after');
    assert.equal(streamed.headers['transfer-encoding'], 'chunked');
    assert.equal(streamed.headers['content-length'], undefined);
  });

  test('every byte value comes back unchanged, in small and larger whole answers', async () => {
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    // A small whole answer goes out as a string with its head; a larger one (PHP flushes its output
    // buffer as it fills) is streamed as Buffers.
    for (const n of [1, 8, 65]) {
      const r = await getBytes(port.main, `/bytes.php?n=${n}`);
      assert.equal(r.status, 200);
      if (n === 1) assert.equal(r.headers['content-length'], '256');
      assert.ok(
        r.body.equals(Buffer.concat(Array.from({ length: n }, () => every))),
        `n=${n}: the same bytes`,
      );
    }
  });

  test('a repeated request header is one parameter with its values joined', async () => {
    const answer = await rawRequest(
      port.main,
      'GET /server.php HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Dup: one\r\nX-Other: o\r\nX-Dup: two\r\n\r\n',
    );
    const s = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Json;
    assert.equal(s.HTTP_X_DUP, 'one, two');
    assert.equal(s.HTTP_X_OTHER, 'o');
  });

  test('HEAD gets the headers and no body', async () => {
    const r = await request(port.main, '/echo.php', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.body, '');
  });

  test('a fatal error is the 500 php-fpm reports, and its message goes to the error log', async () => {
    const r = await request(port.main, '/fatal.php');
    assert.equal(r.status, 500);
    // The log reaches us through a pipe: wait for it rather than race it.
    await waitFor(
      () =>
        /FastCGI stderr: PHP message: PHP Fatal error: .*echo_nonexistent_function_for_test/.test(
          nc.stderr(),
        ),
      10_000,
      'the fatal error in the log',
    );
    const logged = await request(port.main, '/stderr.php');
    assert.equal(logged.body, 'logged');
    await waitFor(
      () => nc.stderr().includes('a message on stderr for the test'),
      10_000,
      'error_log() in the log',
    );
  });

  test('read_timeout: 504 before any output; a cut connection once output has begun', async () => {
    const started = Date.now();
    const r = await request(port.timeout, '/slow-start.php?ms=4000');
    assert.equal(r.status, 504);
    assert.ok(Date.now() - started < 3500, 'answered at the timeout, not when the script ends');
    await assert.rejects(
      request(port.timeout, '/sleep.php?ms=4000'),
      'a truncated body is not a complete one',
    );
    // Data that keeps flowing is not a timeout, however long the whole takes.
    const flowing = await request(port.timeout, '/sleep.php?ms=300');
    assert.equal(flowing.status, 200);
    assert.equal(flowing.body, 'before after');
  });

  test('php-fpm down or unreachable: 502, within connect_timeout', async () => {
    for (const uri of ['/refused/echo.php', '/nosocket/echo.php', '/blackhole/echo.php']) {
      const started = Date.now();
      const r = await request(port.down, uri);
      assert.equal(r.status, 502, uri);
      assert.ok(Date.now() - started < 5000, `${uri} answered in bounded time`);
    }
  });

  test('keep-alive: php-fpm sees far fewer connections than requests', async () => {
    // Sequential requests over one client connection, so one worker: with a new client connection each, a
    // worker the kernel passed over for 250 ms (the idle time of its php-fpm connections under -workers)
    // would rightly open a new one.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = counter.connections();
      for (let i = 0; i < 20; i++)
        assert.equal((await request(port.counted, `/echo.php?name=${i}`, { agent })).body, `hello ${i}`);
      assert.ok(
        counter.connections() - before <= 2,
        `20 requests over ${counter.connections() - before} connections`,
      );
      // Concurrent requests open at most one connection each, and those are reused afterwards.
      const mid = counter.connections();
      await Promise.all(Array.from({ length: 4 }, () => request(port.counted, '/echo.php')));
      for (let i = 0; i < 10; i++) await request(port.counted, '/echo.php', { agent });
      assert.ok(
        counter.connections() - mid <= 4,
        `14 requests over ${counter.connections() - mid} connections`,
      );
    } finally {
      agent.destroy();
    }
  });

  test('keepalive 0: no idle connection is kept, each request has its own', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++)
        assert.equal((await request(port.nokeep, `/echo.php?name=${i}`, { agent })).body, `hello ${i}`);
      assert.equal(counterNoKeep.connections(), 5);
      await waitFor(() => counterNoKeep.open() === 0, 5000, 'every connection closed');
    } finally {
      agent.destroy();
    }
  });

  test('several upstreams: round robin over the TCP and the unix socket pool', async () => {
    // One keep-alive connection, so one worker (each worker has its own round-robin counter).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const seen: string[] = [];
    try {
      for (let i = 0; i < 4; i++) seen.push((await request(port.balanced, '/pool.php', { agent })).body);
    } finally {
      agent.destroy();
    }
    assert.deepEqual(new Set(seen), new Set(['tcp', 'unix']));
    assert.notEqual(seen[0], seen[1]);
    assert.notEqual(seen[1], seen[2]);
  });
});
