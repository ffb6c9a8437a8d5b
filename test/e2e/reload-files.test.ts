// What counts as a change: imported files, editors that delete and recreate, saves that change nothing.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;
const conf = () => path.join(dir, 'Caddyfile');
const imported = () => path.join(dir, 'conf.d', 'site.conf');

const count = (re: RegExp) =>
  nc
    .stderr()
    .split('\n')
    .filter((l) => re.test(l)).length;
const reloads = () => count(/"msg":"config reloaded"/);
const failures = () => count(/reload failed, still serving the previous config/);
const body = async () => (await request(port, '/')).body;

before(async () => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'conf.d'));
  mkdirSync(path.join(dir, 'www'));
  for (const name of ['a', 'b', 'c', 'd']) writeFileSync(path.join(dir, 'www', `${name}.txt`), name);
  port = await freePort();
  writeFileSync(conf(), `:${port} {\n\troot ${path.join(dir, 'www')}\n\timport conf.d/*.conf\n}\n`);
  writeFileSync(imported(), 'index a.txt\n');
  nc = await startNodecaddy(['-conf', conf()]);
  assert.equal(await body(), 'a');
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

test('an edit to an imported file reloads', async () => {
  writeFileSync(imported(), 'index b.txt\n');
  await waitFor(async () => (await body()) === 'b', 10_000, 'reload after import edit');
  // A worker may answer from the new config a moment before the primary logs that all of them switched.
  await waitFor(() => reloads() === 1, 10_000, 'the reload logged');
  assert.equal(reloads(), 1);
});

test('a broken imported file is reported at its own path and line, and changes nothing', async () => {
  writeFileSync(imported(), '\nindex c.txt\nbogus thing\n');
  await waitFor(() => failures() === 1, 10_000, 'failed reload');
  const line = nc
    .stderr()
    .split('\n')
    .find((l) => l.includes('reload failed'))!;
  assert.ok(line.includes(`${imported()}:3 - Error during parsing: Unknown directive 'bogus'`), line);
  assert.equal(await body(), 'b');
});

test('a save that changes nothing is not a reload', async () => {
  const start = reloads();
  writeFileSync(imported(), 'index c.txt\n');
  await waitFor(async () => (await body()) === 'c', 10_000, 'reload after fix');
  await waitFor(() => reloads() === start + 1, 10_000, 'the reload logged');
  const before = reloads();
  const unchanged = count(/"msg":"config unchanged, not reloaded"/);
  writeFileSync(imported(), 'index c.txt\n');
  const t = new Date(Date.now() + 5000);
  utimesSync(conf(), t, t);
  await waitFor(
    () => count(/"msg":"config unchanged, not reloaded"/) > unchanged,
    10_000,
    'the no-op save to be seen',
  );
  assert.equal(reloads(), before, 'a save without a change is not a reload');
  // A real change afterwards proves the watcher was listening the whole time.
  writeFileSync(imported(), 'index d.txt\n');
  await waitFor(async () => (await body()) === 'd', 10_000, 'reload after the real change');
  await waitFor(() => reloads() >= before + 1, 10_000, 'the reload logged');
  assert.equal(reloads(), before + 1, 'only the real change reloaded');
});

test('an editor that deletes and recreates the Caddyfile is still seen', async () => {
  const text = `:${port} {\n\troot ${path.join(dir, 'www')}\n\tindex a.txt\n}\n`;
  rmSync(conf());
  // The editor's pause between delete and create (longer than the debounce and chokidar's atomic window).
  await new Promise((r) => setTimeout(r, 300));
  writeFileSync(conf(), text);
  await waitFor(async () => (await body()) === 'a', 10_000, 'reload after recreate');
  writeFileSync(conf(), text.replace('a.txt', 'b.txt'));
  await waitFor(async () => (await body()) === 'b', 10_000, 'a later in-place edit is seen too');
});
