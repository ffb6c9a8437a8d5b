// `nodecaddy reload` and POST /load against a real server with two workers: a good Caddyfile switches every
// worker, a broken one changes nothing and comes back with the same file:line error a save would log, an
// unchanged one is not reloaded unless forced; the reload metrics count them.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admin, adminPort, sample, scrape } from '../helpers/admin.js';
import { request, waitFor } from '../helpers/http.js';
import { freePort, runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;

before(() => ({ dir, cleanup } = tempDir()));
after(async () => {
  await nc?.stop();
  cleanup?.();
});

describe('nodecaddy reload', () => {
  test('good, broken, unchanged and forced reloads through the admin endpoint', async () => {
    writeFileSync(path.join(dir, 'one.txt'), 'one');
    writeFileSync(path.join(dir, 'two.txt'), 'two');
    const port = await freePort();
    const site = (index: string) => `:${port} {\n\troot ${dir}\n\tindex ${index}\n}\n`;
    const conf = path.join(dir, 'Caddyfile');
    writeFileSync(conf, site('one.txt'));
    nc = await startNodecaddy(['-conf', conf, '-workers', '2', '-admin', '127.0.0.1:0']);
    const at = await adminPort(nc);
    const reload = (file: string, ...flags: string[]) =>
      runNodecaddy(['reload', '-admin', `127.0.0.1:${at}`, '-conf', file, ...flags], { cwd: dir });
    assert.equal((await request(port, '/')).body, 'one');

    const good = path.join(dir, 'good.caddy');
    writeFileSync(good, site('two.txt'));
    const ok = await reload(good);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'config reloaded\n');
    // Every worker committed before the answer: any connection now gets the new config.
    for (let i = 0; i < 6; i++) assert.equal((await request(port, '/')).body, 'two');

    const broken = path.join(dir, 'broken.caddy');
    writeFileSync(broken, `:${port} {\n\troot ${dir}\n\tbogus\n}\n`);
    const refused = await reload(broken);
    assert.equal(refused.code, 1);
    // Named after the running Caddyfile, as a save of it would be.
    assert.equal(refused.stderr, `${conf}:3 - Error during parsing: Unknown directive 'bogus'\n`);
    assert.equal((await request(port, '/')).body, 'two');

    const unchanged = await reload(good);
    assert.equal(unchanged.code, 0);
    assert.match(unchanged.stdout, /config unchanged, not reloaded/);
    const forced = await reload(good, '-force');
    assert.equal(forced.stdout, 'config reloaded\n');

    // The JSON form is taken back too (what GET /config gives).
    const json = JSON.stringify([
      {
        keys: [`:${port}`],
        body: [
          ['root', dir],
          ['index', 'one.txt'],
        ],
      },
    ]);
    const loaded = await admin(at, '/load', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: json,
    });
    assert.equal(loaded.status, 200, loaded.body);
    assert.equal((await request(port, '/')).body, 'one');

    const samples = await scrape(at);
    assert.equal(samples.get(sample('nodecaddy_config_reloads_total', { result: 'success' })), 3);
    assert.equal(samples.get(sample('nodecaddy_config_reloads_total', { result: 'failure' })), 1);

    // The same broken text saved to the Caddyfile is refused with the same words.
    writeFileSync(conf, `:${port} {\n\troot ${dir}\n\tbogus\n}\n`);
    await waitFor(() => nc.stderr().includes('"trigger":"file change"'), 10_000, 'the reload on save');
    const onSave = nc
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"trigger":"file change"') && l.includes('reload failed'));
    assert.equal(onSave.length, 1, nc.stderr());
    assert.ok(onSave[0].includes(`${conf}:3 - Error during parsing: Unknown directive 'bogus'`), onSave[0]);

    const nothere = await runNodecaddy(['reload', '-admin', `127.0.0.1:${await freePort()}`, '-conf', good]);
    assert.equal(nothere.code, 1);
    assert.match(nothere.stderr, /cannot reach the admin endpoint at 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  });
});
