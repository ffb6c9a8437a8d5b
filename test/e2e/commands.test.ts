// The subcommands through the real nodecaddy binary: the command list (-h, help), `help <command>`, and
// Caddy 2's one-line servers `file-server` and `reverse-proxy` (generated Caddyfiles on the normal path).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { SUBCOMMANDS } from '../../src/cli/subcommands.js';
import { request } from '../helpers/http.js';
import { freePort, runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;

before(() => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'site', 'docs'), { recursive: true });
  writeFileSync(path.join(dir, 'site', 'hello.txt'), 'hello from file-server');
  writeFileSync(path.join(dir, 'site', 'docs', 'a.md'), '# a');
  writeFileSync(path.join(dir, 'cwd.txt'), 'from the working directory');
});
after(() => cleanup());

async function stopped(nc: Nodecaddy): Promise<void> {
  assert.equal(await nc.stop(), 0);
}

describe('help', () => {
  test('-h and help list every subcommand, and exit 0', async () => {
    const dashH = await runNodecaddy(['-h']);
    const help = await runNodecaddy(['help']);
    for (const r of [dashH, help]) {
      assert.equal(r.code, 0);
      for (const c of SUBCOMMANDS) assert.match(r.stdout, new RegExp(`^  ${c.name} +\\S`, 'm'), c.name);
      assert.match(r.stdout, /^ {2}-conf string$/m, 'and the flags');
    }
    assert.equal(help.stdout, dashH.stdout);
  });

  test('help <command> shows its flags, as <command> -h does; an unknown one is an error', async () => {
    const fs = await runNodecaddy(['help', 'file-server']);
    assert.equal(fs.code, 0);
    assert.match(fs.stdout, /^Usage: nodecaddy file-server /);
    // Their own flags, then the serving flags they pass on (HTTPS and ACME among them).
    const serving = ['workers', 'agree', 'email', 'ca', 'catimeout', 'disable-http-challenge'].concat([
      'disable-tls-alpn-challenge',
      'data',
      'http-port',
      'https-port',
    ]);
    for (const flag of ['root', 'listen', 'browse', 'domain', ...serving]) {
      assert.match(fs.stdout, new RegExp(`^  -${flag}\\b`, 'm'), flag);
    }
    assert.equal((await runNodecaddy(['file-server', '-h'])).stdout, fs.stdout);
    const rp = await runNodecaddy(['help', 'reverse-proxy']);
    assert.match(rp.stdout, /^ {2}-from string$/m);
    assert.match(rp.stdout, /^ {2}-to string$/m);
    for (const flag of ['internal-certs', ...serving])
      assert.match(rp.stdout, new RegExp(`^  -${flag}\\b`, 'm'), flag);
    const tunnel = await runNodecaddy(['help', 'tunnel']);
    assert.equal(tunnel.code, 0);
    assert.match(tunnel.stdout, /^Usage: nodecaddy tunnel /);
    const nope = await runNodecaddy(['help', 'nope']);
    assert.equal(nope.code, 2);
    assert.match(nope.stderr, /unknown command "nope"/);
    assert.match(nope.stderr, /^ {2}file-server /m);
  });
});

describe('module loading', () => {
  /** The program's own modules (paths under build/src) a run of nodecaddy with `args` loaded. */
  async function modulesLoaded(args: string[]): Promise<string[]> {
    const list = path.join(dir, `loaded-${args.join('-')}.txt`);
    const hooks = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.startsWith('file:')) appendFileSync(${JSON.stringify(list)}, r.url + '\\n');
  return r;
}`;
    const preload = path.join(dir, 'record-modules.mjs');
    writeFileSync(
      preload,
      `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});\n`,
    );
    const r = await runNodecaddy(args, { nodeArgs: ['--import', preload] });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(list, 'utf8')
      .split('\n')
      .filter((url) => url.includes('/build/src/'))
      .map((url) => url.slice(url.indexOf('/build/src/') + '/build/src/'.length));
  }

  test("the tunnel client loads none of the server's modules; serving loads them", async () => {
    const tunnel = await modulesLoaded(['tunnel', '-h']);
    assert.ok(tunnel.includes('tunnel/client.js'), tunnel.join(' '));
    const server = tunnel.filter((m) => /^(app|runtime)\.js$|^(middleware|certs|admin|caddyfile)\//.test(m));
    assert.deepEqual(server, [], 'loaded by the tunnel client');
    const serving = await modulesLoaded(['-version']);
    assert.ok(serving.includes('runtime.js') && serving.includes('cli/serve.js'), serving.join(' '));
  });

  test("neither the server nor the tunnel client loads Node's bundled undici (src/core/node-http.ts)", async () => {
    for (const args of [['-version'], ['tunnel', '-h']]) {
      const list = path.join(dir, `builtins-${args.join('-')}.txt`);
      const preload = path.join(dir, 'record-builtins.mjs');
      writeFileSync(
        preload,
        `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`,
      );
      const r = await runNodecaddy(args, { nodeArgs: ['--import', preload] });
      assert.equal(r.code, 0, r.stderr);
      const builtins = readFileSync(list, 'utf8').split('\n');
      assert.ok(builtins.includes('NativeModule http'), 'node:http is loaded');
      assert.deepEqual(
        builtins.filter((m) => m.includes('undici')),
        [],
        args.join(' '),
      );
    }
  });
});

describe('file-server', () => {
  test('serves -root on -listen, with -browse and -access-log, in one worker or several', async () => {
    for (const workers of ['1', '2']) {
      const nc = await startNodecaddy([
        'file-server',
        '-root',
        path.join(dir, 'site'),
        '-listen',
        '127.0.0.1:0',
        '-browse',
        '-access-log',
        '-workers',
        workers,
      ]);
      try {
        const port = nc.ports[0];
        assert.match(nc.stdout(), /^Serving HTTP on 127\.0\.0\.1:\d+$/m);
        const file = await request(port, '/hello.txt');
        assert.equal(file.status, 200);
        assert.equal(file.body, 'hello from file-server');
        const listing = await request(port, '/docs/', { headers: { Accept: 'application/json' } });
        assert.equal(listing.status, 200);
        assert.deepEqual(
          (JSON.parse(listing.body) as { Name: string }[]).map((i) => i.Name),
          ['a.md'],
        );
        assert.match(nc.stdout(), /"GET \/hello\.txt HTTP\/1\.1" 200 22/, 'access log on stdout');
      } finally {
        await stopped(nc);
      }
    }
  });

  test('defaults: the working directory, no listing; -domain serves only that host', async () => {
    // On the -http-port a domain is plain HTTP, as in Caddy 2 (elsewhere it is HTTPS: commands-https.test.ts).
    const port = await freePort();
    const nc = await startNodecaddy(
      [
        'file-server',
        '-listen',
        `127.0.0.1:${port}`,
        '-http-port',
        String(port),
        '-domain',
        'files.test',
      ].concat(['-workers', '1']),
      { cwd: dir },
    );
    try {
      assert.match(nc.stdout(), new RegExp(`^Serving HTTP on 127\\.0\\.0\\.1:${port}$`, 'm'));
      const file = await request(port, '/cwd.txt', { headers: { Host: 'files.test' } });
      assert.equal(file.body, 'from the working directory');
      assert.equal((await request(port, '/site/', { headers: { Host: 'files.test' } })).status, 404);
      const other = await request(port, '/cwd.txt', { headers: { Host: 'other.test' } });
      assert.equal(other.status, 404);
      assert.match(other.body, /Site other\.test is not served/);
    } finally {
      await stopped(nc);
    }
  });

  test('mistakes are usage errors (exit 2)', async () => {
    const missing = await runNodecaddy(['file-server', '-root', path.join(dir, 'nope')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /-root .*nope: no such directory/);
    assert.match(missing.stderr, /Usage: nodecaddy file-server/);
    const listen = await runNodecaddy(['file-server', '-listen', 'nowhere']);
    assert.equal(listen.code, 2);
    assert.match(listen.stderr, /-listen must be :port or host:port/);
    const domain = await runNodecaddy(['file-server', '-domain', 'a.test:8080']);
    assert.equal(domain.code, 2);
    assert.match(domain.stderr, /-domain must be a host name without a port/);
    const extra = await runNodecaddy(['file-server', 'browse']);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /unexpected argument: browse/);
  });
});

describe('reverse-proxy', () => {
  let backends: http.Server[] = [];
  const ports: number[] = [];

  before(async () => {
    for (const name of ['one', 'two']) {
      const server = http.createServer((req, res) => {
        res.setHeader('X-Backend', name);
        res.end(JSON.stringify({ host: req.headers.host, url: req.url, up: req.headers['x-up'] ?? null }));
      });
      // WebSockets: an echo on every backend.
      const wss = new WebSocketServer({ server });
      wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      backends.push(server);
      ports.push((server.address() as AddressInfo).port);
    }
  });
  after(async () => {
    await Promise.all(
      backends.map((s) => {
        s.closeAllConnections();
        return new Promise((resolve) => s.close(resolve));
      }),
    );
    backends = [];
  });

  test('balances over every -to, passes the client Host, headers both ways, WebSockets', async () => {
    const nc = await startNodecaddy([
      'reverse-proxy',
      '-from',
      ':0',
      '-to',
      `127.0.0.1:${ports[0]}`,
      '-to',
      `http://127.0.0.1:${ports[1]}`,
      '-header-up',
      'X-Up: from nodecaddy',
      '-header-down',
      'X-Down: yes',
      '-workers',
      '1',
    ]);
    try {
      const port = nc.ports[0];
      const seen = new Set<string>();
      for (let i = 0; i < 40 && seen.size < 2; i++) {
        const r = await request(port, `/path?i=${i}`, { headers: { Host: 'client.test:1234' } });
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.body), {
          host: 'client.test:1234',
          url: `/path?i=${i}`,
          up: 'from nodecaddy',
        });
        assert.equal(r.headers['x-down'], 'yes');
        seen.add(String(r.headers['x-backend']));
      }
      assert.deepEqual([...seen].sort(), ['one', 'two']);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/socket`);
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('ping through the proxy'));
        ws.once('message', (m: Buffer) => resolve(m.toString()));
        ws.once('error', reject);
      });
      ws.close();
      assert.equal(echoed, 'ping through the proxy');
    } finally {
      await stopped(nc);
    }
  });

  test('-from with a host serves only that host; -change-host-header sends the upstream host', async () => {
    const nc = await startNodecaddy([
      'reverse-proxy',
      '-from',
      'http://app.test:0',
      '-to',
      String(ports[0]),
      '-change-host-header',
      '-workers',
      '1',
    ]);
    try {
      const port = nc.ports[0];
      const r = await request(port, '/', { headers: { Host: 'app.test' } });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as { host: string }).host, `localhost:${ports[0]}`);
      assert.equal((await request(port, '/', { headers: { Host: 'other.test' } })).status, 404);
      assert.match(nc.stdout(), /^Serving HTTP on port \d+$/m, 'http:// asked for plain HTTP');
    } finally {
      await stopped(nc);
    }
  });

  test('mistakes are usage errors (exit 2)', async () => {
    const noTo = await runNodecaddy(['reverse-proxy', '-from', ':0']);
    assert.equal(noTo.code, 2);
    assert.match(noTo.stderr, /-to is required/);
    const scheme = await runNodecaddy(['reverse-proxy', '-from', 'ftp://a.test', '-to', '9']);
    assert.equal(scheme.code, 2);
    assert.match(scheme.stderr, /-from ftp:\/\/a\.test: unknown scheme ftp/);
    // The ports keep their meaning, as in a Caddyfile: no plain HTTP on the HTTPS port, nor HTTPS on the HTTP one.
    const plainOn443 = await runNodecaddy(['reverse-proxy', '-from', 'http://a.test:443', '-to', '9']);
    assert.equal(plainOn443.code, 2);
    assert.match(plainOn443.stderr, /-from http:\/\/a\.test:443: http:\/\/ on the HTTPS port 443/);
    const tlsOn80 = await runNodecaddy(['reverse-proxy', '-from', 'https://a.test:80', '-to', '9']);
    assert.equal(tlsOn80.code, 2);
    assert.match(tlsOn80.stderr, /https:\/\/ on the HTTP port 80/);
    const header = await runNodecaddy(['reverse-proxy', '-to', '9', '-header-up', 'no colon']);
    assert.equal(header.code, 2);
    assert.match(header.stderr, /-header-up must be "Field: value"/);
  });
});
