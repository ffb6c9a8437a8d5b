// log and errors around a handler of our own: thrown errors, `visible`, statuses of unhandled errors in the
// access log, and a log file shared across a reload while a request of the old config is still running.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defineDirective } from '../../src/core/directive.js';
import { HttpError } from '../../src/core/errors.js';
import { request, waitFor } from '../helpers/http.js';
import { startInProcess, type InProcess } from '../helpers/inprocess.js';
import { tempDir } from '../helpers/process.js';

let release: (() => void) | undefined;

const backend = defineDirective<null>({
  name: 'testbackend',
  setup(d) {
    while (d.next());
    return null;
  },
  build() {
    return {
      middleware: (next) => async (ctx) => {
        if (ctx.path.startsWith('/boom/')) throw new Error(`boom at ${ctx.path}`);
        switch (ctx.path) {
          case '/throw':
            throw new Error('boom from the backend');
          case '/forbidden':
            throw new HttpError(403, undefined, { cause: new Error('EACCES: permission denied') });
          case '/late':
            ctx.res.writeHead(200, { 'Content-Type': 'text/plain' });
            ctx.res.write('partial');
            throw new Error('failed mid-body');
          case '/hold':
            await new Promise<void>((r) => (release = r));
            ctx.res.end('held\n');
            return;
        }
        return next(ctx);
      },
    };
  },
});

let dir: string;
let cleanup: () => void;
const servers: InProcess[] = [];

async function start(text: string): Promise<InProcess> {
  const s = await startInProcess(text, dir, [backend]);
  servers.push(s);
  return s;
}

/** The lines of a file once it has at least n. */
function linesOf(name: string, n = 1): Promise<string[]> {
  return waitFor(
    () => (fileLines(name).length >= n ? fileLines(name) : false),
    10_000,
    `${n} lines in ${name}`,
  );
}

function fileLines(name: string): string[] {
  const f = path.join(dir, name);
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}

before(() => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'index.html'), 'home\n');
  writeFileSync(path.join(dir, '500.html'), '<h1>oops</h1>\n');
});
after(async () => {
  for (const s of servers) await s.stop();
  cleanup?.();
});

describe('errors with thrown errors', () => {
  test('an unexpected throw: 500 page, stack in the error log, status 500 in the access log', async () => {
    const s = await start(
      `127.0.0.1:0 {\n log / a.log "{status} {path}"\n errors e.log {\n  500 500.html\n }\n testbackend\n}\n`,
    );
    const r = await request(s.port, '/throw');
    assert.equal(r.status, 500);
    assert.equal(r.body, '<h1>oops</h1>\n');
    const errLog = await linesOf('e.log', 2);
    assert.match(
      errLog[0],
      /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} \[ERROR 500 \/throw\] Error: boom from the backend$/,
    );
    assert.match(errLog[1], /^\s+at /, 'the stack follows');
    assert.deepEqual(await linesOf('a.log'), ['500 /throw']);
  });

  test('an HttpError with a cause is logged; a plain 404 is not', async () => {
    const s = await start(`127.0.0.1:0 {\n errors e2.log\n testbackend\n}\n`);
    assert.equal((await request(s.port, '/missing')).status, 404);
    const r = await request(s.port, '/forbidden');
    assert.equal(r.status, 403);
    assert.equal(r.body, '403 Forbidden\n');
    const l = await linesOf('e2.log');
    assert.equal(l.length, 1);
    assert.match(l[0], /\[ERROR 403 \/forbidden\] 403 Forbidden: EACCES: permission denied$/);
  });

  test('visible: the error and its stack in the response, not the log', async () => {
    const s = await start(`127.0.0.1:0 {\n errors visible\n testbackend\n}\n`);
    const r = await request(s.port, '/throw');
    assert.equal(r.status, 500);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(r.body, /^\[ERROR 500 \/throw\] Error: boom from the backend\n\s+at /);
  });

  test('a throw after the response started: the connection is cut, the error logged', async () => {
    const s = await start(
      `127.0.0.1:0 {\n log / a3.log "{status} {path}"\n errors e3.log\n testbackend\n}\n`,
    );
    await assert.rejects(request(s.port, '/late'));
    const l = await linesOf('e3.log');
    assert.match(l[0], /\[ERROR 500 \/late\] \(after the response had started\) Error: failed mid-body/);
    assert.match(l[0], /\(after the response had started\)/);
    assert.deepEqual(await linesOf('a3.log'), ['200 /late']);
  });

  test('without errors, the default error page: log still records the status and size', async () => {
    const s = await start(`127.0.0.1:0 {\n log / a4.log "{status} {size} {path}"\n testbackend\n}\n`);
    assert.equal((await request(s.port, '/throw')).status, 500);
    assert.equal((await request(s.port, '/nope')).status, 404);
    const l = await linesOf('a4.log', 2);
    assert.deepEqual(l, [`500 ${'500 Internal Server Error\n'.length} /throw`, `404 14 /nope`]);
  });
});

describe('request data in log lines', () => {
  test('a decoded CR or LF in {path} or {?q} is escaped: one request, one access log line', async () => {
    const s = await start(`127.0.0.1:0 {\n log / inj.log "{path} {?q} {status}"\n}\n`);
    const r = await request(s.port, '/x%0d%0a127.0.0.1%20-%20forged%1b[2J?q=a%0a500%09/fake%c2%9b');
    assert.equal(r.status, 404);
    await linesOf('inj.log');
    assert.deepEqual(fileLines('inj.log'), ['/x\\r\\n127.0.0.1 - forged\\x1B[2J a\\n500\\t/fake\\x9B 404']);
  });

  test('the error log escapes the path and the message, and keeps the stack on its own lines', async () => {
    const s = await start(`127.0.0.1:0 {\n errors e5.log\n testbackend\n}\n`);
    const forged = '%0d%0a2026%2F01%2F01%2000:00:00%20[ERROR%20500%20%2Fforged]%20Error:%20fake';
    assert.equal((await request(s.port, `/boom/x${forged}`)).status, 500);
    const l = await linesOf('e5.log', 2);
    const shown = '/boom/x\\r\\n2026/01/01 00:00:00 [ERROR 500 /forged] Error: fake';
    assert.ok(l[0].endsWith(`[ERROR 500 ${shown}] Error: boom at ${shown}`), l[0]);
    assert.match(l[1], /^\s+at /, 'the stack follows');
    assert.ok(!l.some((line) => line.startsWith('2026/01/01')), l.join('\n'));
  });
});

describe('log across a reload', () => {
  test('a file used by the old and the new config keeps every line, also from a request held over', async () => {
    const s = await start(`127.0.0.1:0 {\n log / shared.log "old {path} {status}"\n testbackend\n}\n`);
    assert.equal((await request(s.port, '/')).status, 200);
    release = undefined;
    const held = request(s.port, '/hold');
    await waitFor(() => release, 10_000, 'the held request');
    await s.reload(`127.0.0.1:0 {\n log / shared.log "new {path} {status}"\n testbackend\n}\n`);
    assert.equal((await request(s.port, '/')).status, 200);
    release!();
    assert.equal((await held).body, 'held\n');
    await linesOf('shared.log', 3);
    // After the old generation closed (its last request is done), the new one still writes.
    assert.equal((await request(s.port, '/after')).status, 404);
    const l = await waitFor(
      () => fileLines('shared.log').length >= 4 && fileLines('shared.log'),
      10_000,
      'four',
    );
    // Lines of overlapping requests may come in either order; none may be missing or doubled.
    assert.deepEqual([...l].sort(), ['new / 200', 'new /after 404', 'old / 200', 'old /hold 200']);
  });
});
