// The listing page in a real browser: headless Chromium (playwright-core driving /usr/bin/chromium) opens
// a listing served by the real nodecaddy process, sorts by clicking a column, and follows a link.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
// In CI a missing browser is a failure, not a skip.
const skip = !available && !process.env.CI ? `Chromium not found at ${CHROMIUM}` : false;

let cleanup: (() => void) | undefined;
let profileCleanup: (() => void) | undefined;
let nc: Nodecaddy | undefined;
let context: BrowserContext | undefined;
let base: string;

before(async () => {
  if (skip) return;
  assert.ok(available, `Chromium is required in CI (looked at ${CHROMIUM})`);
  let dir: string;
  ({ dir, cleanup } = tempDir());
  const root = path.join(dir, 'site');
  mkdirSync(path.join(root, 'docs'), { recursive: true });
  const files: [string, string, number][] = [
    ['small.txt', 'tiny', 3000],
    ['medium.txt', 'm'.repeat(5000), 1000],
    ['large.txt', 'L'.repeat(50_000), 2000],
    ['docs/readme.txt', 'read me first', 1000],
  ];
  for (const [name, body, t] of files) {
    writeFileSync(path.join(root, name), body);
    utimesSync(path.join(root, name), t, t);
  }
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(conf, `127.0.0.1:0 {\n\troot ${root}\n\tbrowse\n}\n`);
  nc = await startNodecaddy(['-conf', conf]);
  base = `http://127.0.0.1:${nc.ports[0]}`;
  const profile = tempDir('nodecaddy-chromium-');
  profileCleanup = profile.cleanup;
  // A fresh profile per run; playwright passes it as --user-data-dir.
  context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
});

after(async () => {
  await context?.close();
  await nc?.stop();
  profileCleanup?.();
  cleanup?.();
});

test('a listing sorts by a clicked column and its links open files', { skip, timeout: 120_000 }, async () => {
  assert.ok(context);
  const page = await context.newPage();
  const rows = () =>
    page
      .locator('tbody tr.entry')
      .evaluateAll((trs: unknown[]) =>
        trs.map((tr) => (tr as { getAttribute(name: string): string | null }).getAttribute('data-name')),
      );

  await page.goto(`${base}/`);
  assert.equal(await page.title(), '/');
  assert.deepEqual(await rows(), ['docs', 'large.txt', 'medium.txt', 'small.txt']);
  assert.match(await page.locator('.summary').innerText(), /1 directory, 3 files/);

  await page.click('#sort-size');
  await page.waitForURL(/sort=size&order=asc/);
  assert.deepEqual(await rows(), ['docs', 'small.txt', 'medium.txt', 'large.txt']);
  // Clicking the active column again reverses it.
  await page.click('#sort-size');
  await page.waitForURL(/sort=size&order=desc/);
  assert.deepEqual(await rows(), ['large.txt', 'medium.txt', 'small.txt', 'docs']);
  assert.equal(await page.locator('th.size').getAttribute('aria-sort'), 'descending');

  // The choice is remembered by cookie: a plain visit keeps it.
  await page.goto(`${base}/`);
  assert.deepEqual(await rows(), ['large.txt', 'medium.txt', 'small.txt', 'docs']);

  // The filter box hides rows that do not match.
  await page.fill('#filter', 'med');
  assert.deepEqual(
    await page
      .locator('tbody tr.entry:visible')
      .evaluateAll((trs: unknown[]) =>
        trs.map((tr) => (tr as { getAttribute(name: string): string | null }).getAttribute('data-name')),
      ),
    ['medium.txt'],
  );

  await page.fill('#filter', '');
  // Follow a directory, then a file link.
  await page.click('a[href="./docs/"]');
  await page.waitForURL(`${base}/docs/`);
  assert.match(await page.locator('h1').innerText(), /docs/);
  await page.click('a[href="./readme.txt"]');
  await page.waitForURL(`${base}/docs/readme.txt`);
  assert.equal((await page.locator('body').innerText()).trim(), 'read me first');
  await page.close();
});
