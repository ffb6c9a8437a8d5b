// The real nodecaddy process: flags, Caddyfile discovery, exit codes, startup listing, signals.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FLAGS } from '../../src/cli/options.js';
import { request, waitFor } from '../helpers/http.js';
import { CLI, runNodecaddy, spawnNodecaddy, startNodecaddy, tempDir } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;

before(() => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), '<h1>www</h1>');
  writeFileSync(path.join(dir, 'www', 'hello.txt'), 'hello');
  writeFileSync(path.join(dir, 'here.txt'), 'from cwd');
});
after(() => cleanup());

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('one-shot flags', () => {
  test('-version', async () => {
    const r = await runNodecaddy(['-version']);
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      new RegExp(`^nodecaddy ${pkg.version.replaceAll('.', '\\.')}\ngzip: (libdeflate|node:zlib) .+\n$`),
    );
  });

  test('-h lists every flag and exits 0', async () => {
    const r = await runNodecaddy(['-h']);
    assert.equal(r.code, 0);
    for (const f of FLAGS) assert.match(r.stdout, new RegExp(`^  -${f.name}\\b`, 'm'), `-${f.name} listed`);
  });

  test('an unknown flag exits 2 with usage', async () => {
    const r = await runNodecaddy(['-bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /flag provided but not defined: -bogus/);
    assert.match(r.stderr, /-conf string/);
  });

  test('-validate accepts a good Caddyfile', async () => {
    const conf = write('good.caddy', `:0 {\n\troot ${path.join(dir, 'www')}\n\tindex hello.txt\n}\n`);
    const r = await runNodecaddy(['-conf', conf, '-validate']);
    assert.equal(r.stdout, 'Caddyfile is valid\n');
    assert.equal(r.code, 0);
  });

  test('-validate rejects a bad Caddyfile with file:line and exit 1', async () => {
    write('bad.caddy', ':0 {\n\troott /x\n}\n');
    const r = await runNodecaddy(['-conf', 'bad.caddy', '-validate'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^bad\.caddy:2 - Error during parsing: Unknown directive 'roott'.*'root'/m);
    assert.equal(r.stdout, '');
  });

  test('starting with a bad Caddyfile exits 1 and names the line', async () => {
    write('bad2.caddy', ':0 {\n\troot /x\n}\n}\n');
    const r = await runNodecaddy(['-conf', 'bad2.caddy'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /bad2\.caddy:4 - Error during parsing: Unexpected '}' because no matching opening brace/,
    );
  });

  test('a missing -conf file is an error', async () => {
    const r = await runNodecaddy(['-conf', 'nope.caddy'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /open nope\.caddy: no such file or directory/);
  });

  test('two sites with the same address are an error', async () => {
    write('dup.caddy', 'localhost:9 {\n}\nlocalhost:9 {\n}\n');
    const r = await runNodecaddy(['-conf', 'dup.caddy', '-validate'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /dup\.caddy:3 - Error during parsing: duplicate site address: http:\/\/localhost:9/,
    );
  });

  test('-caddyfile-to-json and -json-to-caddyfile', async () => {
    const toJson = await runNodecaddy(['-caddyfile-to-json'], {
      stdin: 'a.com b.com {\n\tgzip\n\tproxy / x {\n\t\tpolicy first\n\t}\n}\n',
    });
    assert.equal(toJson.code, 0);
    assert.equal(
      toJson.stdout,
      '[{"keys":["a.com","b.com"],"body":[["gzip"],["proxy","/","x",[["policy","first"]]]]}]\n',
    );
    const back = await runNodecaddy(['-json-to-caddyfile'], { stdin: toJson.stdout });
    assert.equal(back.code, 0);
    assert.equal(back.stdout, 'a.com, b.com {\n\tgzip\n\tproxy / x {\n\t\tpolicy first\n\t}\n}\n');
    // Nothing to convert is an empty list: an empty Caddyfile, or one whose only import matches no file.
    for (const stdin of ['', `import ${path.join(dir, 'nothing-here-*.conf')}\n`]) {
      const empty = await runNodecaddy(['-caddyfile-to-json'], { stdin });
      assert.equal(empty.code, 0);
      assert.equal(empty.stdout, '[]\n');
    }
    const bad = await runNodecaddy(['-json-to-caddyfile'], { stdin: '{nope' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Converting from JSON failed: /);
  });

  test('-envfile feeds {$VAR} and its errors name the line', async () => {
    const env = write('vars.env', '# comment\nSITE_ROOT=' + path.join(dir, 'www') + '\n');
    const conf = write('env.caddy', ':0\nroot {$SITE_ROOT}\nindex hello.txt\n');
    const nc = await startNodecaddy(['-conf', conf, '-envfile', env]);
    try {
      const r = await request(nc.ports[0], '/');
      assert.equal(r.body, 'hello');
    } finally {
      await nc.stop();
    }
    const badEnv = write('bad.env', 'OK=1\nnot a pair\n');
    const r = await runNodecaddy(['-conf', conf, '-envfile', badEnv]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Can't parse line 2; line should be in KEY=VALUE format/);
  });
});

describe('serving', () => {
  test('positional arguments are a short Caddyfile', async () => {
    const nc = await startNodecaddy(['-port', '0', `root ${path.join(dir, 'www')}`, 'index hello.txt']);
    try {
      const r = await request(nc.ports[0], '/');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello');
      assert.equal(r.headers.server, 'nodecaddy');
      assert.match(nc.stdout(), /^Serving HTTP on port (\d+)\nhttp:\/\/localhost:\1$/m, 'a usable URL');
    } finally {
      assert.equal(await nc.stop(), 0);
    }
  });

  test('no Caddyfile: serves the current directory', async () => {
    const { dir: empty, cleanup: done } = tempDir();
    writeFileSync(path.join(empty, 'file.txt'), 'default site');
    const nc = await startNodecaddy(['-port', '0'], { cwd: empty });
    try {
      const r = await request(nc.ports[0], '/file.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'default site');
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    } finally {
      await nc.stop();
      done();
    }
  });

  test('./Caddyfile is used by default, and is never served', async () => {
    const { dir: site, cleanup: done } = tempDir();
    writeFileSync(path.join(site, 'Caddyfile'), ':0 {\n\troot .\n}\n');
    writeFileSync(path.join(site, 'a.txt'), 'A');
    const nc = await startNodecaddy([], { cwd: site });
    try {
      assert.equal((await request(nc.ports[0], '/a.txt')).body, 'A');
      assert.equal((await request(nc.ports[0], '/Caddyfile')).status, 404);
    } finally {
      await nc.stop();
      done();
    }
  });

  test('-conf stdin: empty or a terminal is an error, not the default site', async () => {
    const empty = await runNodecaddy(['-conf', 'stdin'], { stdin: '' });
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /^-conf stdin: standard input is empty; pipe a Caddyfile in/m);
    assert.equal(empty.stdout, '');
    assert.equal((await runNodecaddy(['-conf', 'stdin'], { stdin: ' \n\n' })).code, 1);
    // A terminal on stdin (script(1) gives the child one): nobody is typing a Caddyfile there.
    const tty = spawnSync('script', ['-qec', `'${process.execPath}' '${CLI}' -conf stdin`, '/dev/null'], {
      encoding: 'utf8',
      timeout: 20_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (tty.error) return; // no script(1) here: the empty case above stands
    assert.match(tty.stdout + tty.stderr, /-conf stdin: standard input is a terminal/);
    assert.equal(tty.status, 1);
  });

  test('-conf stdin', async () => {
    const nc = await startNodecaddy(['-conf', 'stdin'], {
      stdin: `127.0.0.1:0\nroot ${path.join(dir, 'www')}\n`,
    });
    try {
      assert.equal((await request(nc.ports[0], '/hello.txt')).body, 'hello');
      assert.match(nc.stdout(), /^Serving HTTP on port \d+\nhttp:\/\/127\.0\.0\.1:\d+$/m);
    } finally {
      await nc.stop();
    }
  });

  test('-quiet prints nothing; -pidfile is written and removed', async () => {
    const pidfile = path.join(dir, 'nc.pid');
    const conf = write('quiet.caddy', `:0\nroot ${path.join(dir, 'www')}\n`);
    const nc = spawnNodecaddy(['-conf', conf, '-quiet', '-pidfile', pidfile]);
    const pid = await waitFor(() => existsSync(pidfile) && readFileSync(pidfile, 'utf8'), 10_000, 'pidfile');
    assert.equal(pid, `${nc.child.pid}\n`);
    assert.equal(await nc.stop(), 0);
    assert.equal(nc.stdout(), '');
    assert.equal(existsSync(pidfile), false);
  });

  test('a port that cannot be bound is a clear error and exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runNodecaddy(['-port', String(port), 'bind 127.0.0.1']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`listen tcp 127\\.0\\.0\\.1:${port}: address already in use`));
    } finally {
      blocker.close();
    }
  });
});

describe('more flags', () => {
  test('-conf with a glob loads every matching file, and reloads when one changes', async () => {
    mkdirSync(path.join(dir, 'sites'));
    writeFileSync(path.join(dir, 'sites', 'a.caddy'), `a.test:0 {\n\troot www\n\tindex index.html\n}\n`);
    writeFileSync(path.join(dir, 'sites', 'b.caddy'), `b.test:0 {\n\troot www\n\tindex hello.txt\n}\n`);
    const nc = await startNodecaddy(['-conf', 'sites/*.caddy'], { cwd: dir });
    try {
      const port = nc.ports[0];
      assert.equal((await request(port, '/', { headers: { Host: 'a.test' } })).body, '<h1>www</h1>');
      assert.equal((await request(port, '/', { headers: { Host: 'b.test' } })).body, 'hello');
      writeFileSync(path.join(dir, 'sites', 'b.caddy'), `b.test:0 {\n\troot www\n\tindex index.html\n}\n`);
      await waitFor(
        async () => (await request(port, '/', { headers: { Host: 'b.test' } })).body === '<h1>www</h1>',
        10_000,
        'reload of a globbed file',
      );
    } finally {
      await nc.stop();
    }
  });

  test('-root sets the root of every site; -host fills addresses without one', async () => {
    const nc = await startNodecaddy(['-root', path.join(dir, 'www'), '-host', 'example.test', '-port', '0']);
    try {
      assert.match(nc.stdout(), /^http:\/\/example\.test:\d+$/m);
      const r = await request(nc.ports[0], '/hello.txt', { headers: { Host: 'example.test' } });
      assert.equal(r.body, 'hello');
      assert.equal(
        (await request(nc.ports[0], '/hello.txt', { headers: { Host: 'other.test' } })).status,
        404,
      );
    } finally {
      await nc.stop();
    }
  });

  test('-log-format text writes Caddy-style lines; a bad value is a usage error', async () => {
    const nc = await startNodecaddy(['-port', '0', '-log-format', 'text', `root ${path.join(dir, 'www')}`]);
    assert.equal(await nc.stop(), 0);
    assert.match(nc.stderr(), /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[INFO\] serving sites=\["http:\/\/:0"\]$/m);
    assert.match(nc.stderr(), /^\S+ \S+ \[INFO\] shutting down gracefully signal=SIGTERM graceMs=5000$/m);
    const bad = await runNodecaddy(['-log-format', 'xml']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid value "xml" for flag -log-format/);
  });

  test('-log writes the process log as JSON lines to a file', async () => {
    const logFile = path.join(dir, 'logs', 'nodecaddy.log');
    const nc = await startNodecaddy(['-port', '0', '-log', logFile, `root ${path.join(dir, 'www')}`]);
    assert.equal(await nc.stop(), 0);
    const lines = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string });
    assert.ok(lines.some((l) => l.msg === 'serving'));
    assert.ok(lines.some((l) => l.msg === 'shutdown complete'));
    assert.equal(nc.stderr(), '');
  });
});
