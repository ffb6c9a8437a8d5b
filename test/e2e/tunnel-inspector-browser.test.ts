// The inspector page in a real browser (headless Chromium through playwright-core, as the browse tests):
// the list fills while requests run, a click shows a JSON body pretty-printed, replay adds an entry the
// local target really received, and the page works dark and on a phone-sized screen. With SCREENSHOT_DIR
// set, it saves inspector.png there (the README's picture comes from here).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, startTarget, text, viaTunnel, type Target } from '../helpers/tunnel.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
// In CI a missing browser is a failure, not a skip.
const skip = !available && !process.env.CI ? `Chromium not found at ${CHROMIUM}` : false;

let tmp: { dir: string; cleanup: () => void } | undefined;
let profile: { dir: string; cleanup: () => void } | undefined;
let target: Target | undefined;
let server: Nodecaddy | undefined;
let client: Nodecaddy | undefined;
let context: BrowserContext | undefined;
let port: number;
let base: string;

before(async () => {
  if (skip) return;
  assert.ok(available, `Chromium is required in CI (looked at ${CHROMIUM})`);
  tmp = tempDir();
  target = await startTarget();
  port = await freePort();
  server = await startPublic(tmp.dir, port);
  client = await startClient(port, 'demo', target.port, { args: ['-inspect', '127.0.0.1:0'] });
  base = /^Inspector (http:\/\/127\.0\.0\.1:\d+)$/m.exec(client.stdout())![1];
  profile = tempDir('nodecaddy-chromium-');
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
    viewport: { width: 1100, height: 640 },
    timeout: 60_000,
  });
});

after(async () => {
  await context?.close();
  await client?.stop('SIGINT');
  await server?.stop();
  await target?.close();
  profile?.cleanup();
  tmp?.cleanup();
});

const rowCount = (page: Page) => page.locator('#rows tr.entry').count();

test(
  'the inspector lists requests live, pretty-prints JSON, and replays to the target',
  { skip, timeout: 120_000 },
  async () => {
    assert.ok(context && target);
    const page = await context.newPage();
    await page.goto(base);
    await page.locator('#state', { hasText: 'online' }).waitFor();
    assert.equal(await rowCount(page), 0);

    // Requests made while the page is open appear one by one, newest first.
    const paths = ['/echo?step=1', '/echo?step=2', '/compressed?enc=gzip', '/echo?step=3'];
    for (const [i, p] of paths.entries()) {
      await text(
        await viaTunnel(port, 'demo', p, {
          method: i === 1 ? 'POST' : 'GET',
          body: i === 1 ? 'a=1&b=two' : undefined,
        }),
      );
      await waitFor(async () => (await rowCount(page)) === i + 1, 10_000, `${i + 1} rows`);
    }
    assert.equal(await page.locator('#rows tr.entry td.path').first().innerText(), '/echo?step=3');

    const json = { name: 'nodecaddy', tunnel: { replay: true, list: [1, 2] } };
    await text(
      await viaTunnel(port, 'demo', '/echo?json=1', {
        method: 'POST',
        body: JSON.stringify(json),
        headers: { 'content-type': 'application/json' },
      }),
    );
    const row = page.locator('#rows tr.entry', { hasText: '/echo?json=1' });
    await row.locator('td.status', { hasText: '200' }).waitFor();
    await row.click();
    const body = page.locator('#body.json');
    await body.waitFor();
    assert.equal(await body.innerText(), JSON.stringify(json, null, 2));
    assert.ok((await page.locator('#body.json .j-key').count()) > 0, 'keys are highlighted');

    // The gzip body is shown decoded.
    await page.locator('#rows tr.entry', { hasText: '/compressed?enc=gzip' }).click();
    await page.locator('.note', { hasText: 'decoded from gzip' }).waitFor();

    // Replay: a new entry, linked to its original, that the target really received.
    await row.click();
    await page.locator('#body.json').waitFor();
    const seen = target.seen.filter((u) => u === '/echo?json=1').length;
    await page.locator('#replay').click();
    await page.locator('#rows tr.entry.replay').waitFor();
    await page.locator('#detail', { hasText: 'replay of' }).waitFor();
    assert.equal(target.seen.filter((u) => u === '/echo?json=1').length, seen + 1);
    await page.locator('#body.json').waitFor();
    assert.equal(await page.locator('#body.json').innerText(), JSON.stringify(json, null, 2));

    // The filter box.
    await page.locator('#filter').fill('step');
    await waitFor(async () => (await rowCount(page)) === 3, 10_000, 'the filtered rows');
    await page.locator('#filter').fill('');

    if (process.env.SCREENSHOT_DIR) {
      await page.locator('#rows tr.entry', { hasText: '/echo?json=1' }).last().click();
      await page.locator('#body.json').waitFor();
      await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'inspector.png') });
    }
    await page.close();
  },
);

test(
  'dark mode, and a phone-sized screen: list first, the detail on a tap, back to the list',
  { skip, timeout: 60_000 },
  async () => {
    assert.ok(context);
    const page = await context.newPage();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(base);
    await page.locator('#rows tr.entry').first().waitFor();
    // Evaluated in the page (the page's own CSP forbids evaluating strings there); the cast is for tsc alone.
    const background = await page.evaluate(() => {
      const w = globalThis as unknown as {
        document: { body: unknown };
        getComputedStyle(element: unknown): { backgroundColor: string };
      };
      return w.getComputedStyle(w.document.body).backgroundColor;
    });
    assert.equal(background, 'rgb(13, 17, 23)');
    assert.ok(await page.locator('#list').isVisible());
    assert.ok(!(await page.locator('#detail').isVisible()));
    await page.locator('#rows tr.entry').first().click();
    await page.locator('#detail h2').waitFor();
    assert.ok(!(await page.locator('#list').isVisible()));
    await page.locator('#back').click();
    assert.ok(await page.locator('#list').isVisible());
    await page.close();
  },
);
