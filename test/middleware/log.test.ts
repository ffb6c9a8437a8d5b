// log end to end through the real nodecaddy process: formats, outputs, scopes, except, ipmask, rolling.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { makeMask, maskIp, parseV4Mask, parseV6Mask } from '../../src/middleware/log/ipmask.js';
import { request, waitFor } from '../helpers/http.js';
import { loadError } from '../helpers/inprocess.js';
import { runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

const CLF =
  /^(\S+) - (\S+) \[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+)$/;

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  mkdirSync(www);
  writeFileSync(path.join(www, 'index.html'), 'hello log\n');
  writeFileSync(path.join(www, 'page.html'), 'hello log\n');
  writeFileSync(path.join(dir, 'rot-2000-01-01T00-00-00.000.log'), 'an ancient backup\n');
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `http://common.test:0 {
  root www
  log common.log
}
http://combined.test:0 {
  root www
  log / combined.log "{combined}"
}
http://custom.test:0 {
  root www
  log / custom.log "{method} {path} {status} {size} {>X-Test} {?q} {<Content-Type} port={port} {latency_ms} {hostonly}"
}
http://stdout.test:0 {
  root www
  log stdout
}
http://stderr.test:0 {
  root www
  log / stderr "to-stderr {path}"
}
http://scoped.test:0 {
  root www
  log /api api.log "{path}"
  log / all.log "{path}"
  log / all2.log "second {path}"
}
http://except.test:0 {
  root www
  log except.log {
    except /health /static/
  }
}
http://mask.test:0 {
  root www
  log mask.log {
    ipmask 255.255.0.0
  }
}
http://rot.test:0 {
  root www
  log / rot.log "{>X-Pad}" {
    rotate_size 1
    rotate_keep 2
    rotate_age 30
    rotate_compress
  }
}
`,
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile'], { cwd: dir });
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const get = (host: string, p: string, headers: Record<string, string> = {}) =>
  request(port, p, { headers: { Host: host, ...headers } });

/** The lines of a log file once it has at least `n` of them. */
async function lines(file: string, n: number): Promise<string[]> {
  return waitFor(
    () => {
      if (!existsSync(path.join(dir, file))) return false;
      const all = readFileSync(path.join(dir, file), 'utf8').split('\n').filter(Boolean);
      return all.length >= n ? all : false;
    },
    10_000,
    `${n} lines in ${file}`,
  );
}

describe('log formats and outputs', () => {
  test('default: Common Log Format in a file relative to the working directory, 404s with their status', async () => {
    assert.equal((await get('common.test', '/page.html?a=1')).status, 200);
    assert.equal((await get('common.test', '/nope')).status, 404);
    // Two workers may each write their line: find them by content, not by order.
    const both = await lines('common.log', 2);
    const ok = both.find((l) => l.includes('/page.html'))!;
    const missing = both.find((l) => l.includes('/nope'))!;
    const m = CLF.exec(ok);
    assert.ok(m, ok);
    assert.deepEqual(m.slice(1, 3), ['127.0.0.1', '-']);
    assert.deepEqual(m.slice(4), ['GET', '/page.html?a=1', 'HTTP/1.1', '200', '10']);
    const n = CLF.exec(missing);
    assert.ok(n, missing);
    assert.deepEqual(n.slice(7), ['404', String('404 Not Found\n'.length)]);
  });

  test('{combined} adds referer and user agent; missing values are -', async () => {
    await get('combined.test', '/', { Referer: 'http://ref.example/', 'User-Agent': 'tester/1.0' });
    await get('combined.test', '/');
    const both = await lines('combined.log', 2);
    const a = both.find((l) => l.includes('ref.example'))!;
    const b = both.find((l) => l !== a)!;
    assert.match(a, / 200 10 "http:\/\/ref\.example\/" "tester\/1\.0"$/);
    assert.match(b, / 200 10 "-" "-"$/);
  });

  test('a custom format with request, response and connection placeholders', async () => {
    await get('custom.test', '/page.html?q=search', { 'X-Test': 'hdr' });
    await get('custom.test', '/page.html');
    const both = await lines('custom.log', 2);
    const a = both.find((l) => l.includes(' hdr '))!;
    const b = both.find((l) => l !== a)!;
    assert.match(
      a,
      /^GET \/page\.html 200 10 hdr search text\/html; charset=utf-8 port=\d+ \d+ custom\.test$/,
    );
    // {?q} of a missing argument is '' even in log (Caddy's quirk), other empties are '-'.
    assert.match(b, /^GET \/page\.html 200 10 - {2}text\/html; charset=utf-8 port=\d+ \d+ custom\.test$/);
  });

  test('stdout and stderr', async () => {
    await get('stdout.test', '/page.html');
    await get('stderr.test', '/from-stderr');
    await waitFor(() => / "GET \/page\.html HTTP\/1\.1" 200 10$/m.test(nc.stdout()), 10_000, 'stdout line');
    await waitFor(() => /^to-stderr \/from-stderr$/m.test(nc.stderr()), 10_000, 'stderr line');
  });

  test('path scopes: the first matching scope wins, every entry of it is written', async () => {
    await get('scoped.test', '/api/x');
    await get('scoped.test', '/other');
    assert.deepEqual(await lines('api.log', 1), ['/api/x']);
    assert.deepEqual(await lines('all.log', 1), ['/other']);
    assert.deepEqual(await lines('all2.log', 1), ['second /other']);
  });

  test('except: listed paths are not logged', async () => {
    await get('except.test', '/health');
    await get('except.test', '/static/app.js');
    await get('except.test', '/page.html');
    const all = await lines('except.log', 1);
    // The excepted requests came first: had they been logged they would be here too.
    await request(port, '/page.html', { headers: { Host: 'except.test' } });
    const after = await lines('except.log', 2);
    assert.equal(all.length, 1);
    assert.equal(after.length, 2);
    for (const l of after) assert.match(l, /"GET \/page\.html HTTP\/1\.1" 200/);
  });

  test('ipmask masks {remote}', async () => {
    await get('mask.test', '/');
    const [l] = await lines('mask.log', 1);
    assert.match(l, /^127\.0\.0\.0 - - \[/);
  });
});

describe('log rolling', () => {
  test('rotate_size, rotate_keep, rotate_age and rotate_compress', async () => {
    const pad = 'x'.repeat(8000);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    try {
      // ~3.3 MB of lines: at least three rotations at 1 MB.
      const total = 420;
      for (let i = 0; i < total; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, (_, k) =>
            request(port, '/', { agent, headers: { Host: 'rot.test', 'X-Pad': `${i + k} ${pad}` } }),
          ),
        );
      }
    } finally {
      agent.destroy();
    }
    const backups = () => readdirSync(dir).filter((f) => /^rot-\d{4}-.*\.log(\.gz)?$/.test(f));
    await waitFor(
      () => backups().length === 2 && backups().every((f) => f.endsWith('.gz')),
      20_000,
      `two compressed backups (have ${backups().join(', ')})`,
    );
    assert.ok(
      !backups().includes('rot-2000-01-01T00-00-00.000.log'),
      'the backup older than 30 days is gone',
    );
    // Every backup holds whole lines of the right size, and the current file is under 1 MB.
    for (const b of backups()) {
      const text = zlib.gunzipSync(readFileSync(path.join(dir, b))).toString();
      const ls = text.split('\n');
      assert.equal(ls.pop(), '');
      // With several workers another process's batch (at most 256 KB) may land after the roll: lines are
      // never lost or split, so a backup may pass rotate_size by that much (documented in the README).
      assert.ok(text.length <= 1024 * 1024 + 256 * 1024, `${b} is ${text.length} bytes`);
      for (const l of ls) assert.match(l, /^\d+ x{8000}$/);
    }
    assert.ok(readFileSync(path.join(dir, 'rot.log')).length <= 1024 * 1024);
    assert.ok(!existsSync(path.join(dir, 'rot.log.rotating')), 'the rotation lock is released');
  });
});

describe('ipmask', () => {
  test('IPv4 and IPv6 masks, as Go prints them', () => {
    const mask = makeMask(parseV4Mask('255.255.255.0'), parseV6Mask('ffff:ffff:ffff::'));
    assert.equal(maskIp('192.168.1.77', mask), '192.168.1.0');
    assert.equal(maskIp('2001:db8:85a3:1234:8a2e:370:7334:1', mask), '2001:db8:85a3::');
    assert.equal(maskIp('::ffff:10.1.2.3', mask), '10.1.2.0');
    assert.equal(maskIp('::1', makeMask(undefined, parseV6Mask('ffff::'))), '::');
    assert.equal(maskIp('fe80::1:2:0:0:5', makeMask()), 'fe80::1:2:0:0:5');
    assert.equal(maskIp('not-an-ip', mask), 'not-an-ip');
  });
});

describe('log: bad configuration fails at load time with file:line', () => {
  const cases: [string, RegExp][] = [
    [
      'log a b c d',
      /too many arguments: expected 'log', 'log <output>' or 'log <path> <output> \[<format>\]'/,
    ],
    ['log x.log {\n rotate_size big\n}', /invalid roller parameter: expected 'rotate_size <megabytes>'/],
    ['log x.log {\n rotate_keep\n}', /invalid roller parameter: expected 'rotate_keep <files>'/],
    ['log x.log {\n rotate_compress yes\n}', /invalid roller parameter: rotate_compress takes no arguments/],
    ['log x.log {\n ipmask 255.255.0\n}', /IPv4 Mask not valid IP Mask Format/],
    ['log x.log {\n ipmask "" nope\n}', /IPv6 Mask not valid IP Mask Format/],
    ['log x.log {\n ipmask\n}', /expected 'ipmask <v4mask> \[<v6mask>\]'/],
    ['log x.log {\n except\n}', /expected 'except <path>…'/],
    ['log x.log {\n rotate_sise 5\n}', /Unknown subdirective 'rotate_sise' \(did you mean 'rotate_size'\?\)/],
    ['log syslog', /log output 'syslog' is not supported/],
  ];
  for (const [body, want] of cases) {
    test(body.replace(/\n/g, ' '), () => {
      const message = loadError(`:0\n${body}\n`, dir);
      assert.match(message, want);
      assert.match(message, /^Caddyfile:\d+ /);
    });
  }

  test('through the CLI: -validate names file and line', async () => {
    writeFileSync(path.join(dir, 'bad.caddy'), ':0\nlog x.log {\n  rotate_age many\n}\n');
    const r = await runNodecaddy(['-conf', 'bad.caddy', '-validate'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.caddy:3 .*invalid roller parameter/);
  });
});
