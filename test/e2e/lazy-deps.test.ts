// The big dependencies that only some configurations need (certificate making, Redis) are not loaded by a
// server that does not use them, nor by the tunnel client: each costs every process megabytes of live heap.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { request } from '../helpers/http.js';
import { runNodecaddy, startNodecaddy, tempDir } from '../helpers/process.js';

const LAZY = ['acme-client', '@peculiar/x509', '@redis/client'];

/** A preload that prints, at exit, the npm packages the process loaded through require (CommonJS ones). */
const PRELOAD = `process.on('exit', () => {
  const names = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file);
    if (m) names.add(m[1]);
  }
  process.stderr.write('LOADED ' + [...names].sort().join(',') + '\\n');
});
`;

function loaded(stderr: string): string[] {
  const line = /^LOADED (.*)$/m.exec(stderr);
  assert.ok(line, `no LOADED line in: ${stderr}`);
  return line[1].split(',');
}

test('a plain HTTP server loads neither acme-client, @peculiar/x509 nor @redis/client; self_signed loads x509', async () => {
  const tmp = tempDir();
  try {
    const preload = path.join(tmp.dir, 'loaded.cjs');
    writeFileSync(preload, PRELOAD);
    const env = { NODE_OPTIONS: `--require ${preload}` };

    // The whole import graph of the binary, which every worker and the tunnel client load too.
    const version = await runNodecaddy(['-version'], { env });
    assert.equal(version.code, 0, version.stderr);
    const atStart = loaded(version.stderr);
    assert.ok(atStart.includes('pino'), 'the preload sees packages the server does load');
    for (const name of LAZY) assert.ok(!atStart.includes(name), `${name} loaded at startup`);

    // A server that served a request.
    writeFileSync(path.join(tmp.dir, 'index.html'), 'hello');
    const conf = path.join(tmp.dir, 'Caddyfile');
    writeFileSync(conf, `127.0.0.1:0 {\n  root ${tmp.dir}\n}\n`);
    const nc = await startNodecaddy(['-conf', conf, '-workers', '1', '-watch=false'], { env });
    assert.equal((await request(nc.ports[0], '/')).status, 200);
    await nc.stop();
    for (const name of LAZY)
      assert.ok(!loaded(nc.stderr()).includes(name), `${name} loaded by a plain server`);

    // A site that makes its certificate loads x509 when it needs it.
    writeFileSync(conf, `https://127.0.0.1:0 {\n  tls self_signed\n  root ${tmp.dir}\n}\n`);
    const tls = await startNodecaddy(['-conf', conf, '-workers', '1', '-watch=false'], { env });
    await tls.stop();
    assert.ok(loaded(tls.stderr()).includes('@peculiar/x509'), tls.stderr());
  } finally {
    tmp.cleanup();
  }
});
