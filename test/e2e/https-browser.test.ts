// A `tls internal` site in a real browser: headless Chromium (playwright-core driving /usr/bin/chromium) trusts
// nodecaddy's local root CA the way a person would, through the NSS database in its home folder (certutil), with
// no --ignore-certificate-errors; the page, its script and its stylesheet come over HTTP/2. The same page in a
// browser whose NSS database lacks the root fails with a certificate error.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveCertutil = !spawnSync('certutil', ['-H']).error;
const available = existsSync(CHROMIUM) && haveCertutil;
// In CI a missing browser or certutil is a failure, not a skip.
const skip =
  !available && !process.env.CI ? `needs Chromium at ${CHROMIUM} and certutil (libnss3-tools)` : false;

let dir: string;
let cleanup: (() => void) | undefined;
let nc: Nodecaddy | undefined;
let origin: string;
let rootFile: string;
const contexts: BrowserContext[] = [];

before(async () => {
  if (skip) return;
  assert.ok(available, `Chromium (${CHROMIUM}) and certutil are required in CI`);
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  mkdirSync(www);
  writeFileSync(
    path.join(www, 'index.html'),
    '<!doctype html><html><head><title>over h2</title><link rel="stylesheet" href="/style.css">' +
      '<script src="/app.js" defer></script></head><body><p id="state">waiting</p></body></html>\n',
  );
  writeFileSync(path.join(www, 'style.css'), 'body { background-color: rgb(1, 2, 3); }\n');
  writeFileSync(path.join(www, 'app.js'), "document.getElementById('state').textContent = 'script ran';\n");
  const port = await freePort();
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://localhost:${port} {\n  bind 127.0.0.1\n  tls internal\n  root www\n}\n`,
  );
  const httpPort = await freePort();
  const data = path.join(dir, 'data');
  nc = await startNodecaddy(
    ['-conf', 'Caddyfile', '-workers', '1', '-data', data, '-http-port', String(httpPort)],
    { cwd: dir, listeners: 2 },
  );
  origin = `https://localhost:${port}`;
  rootFile = path.join(data, 'pki', 'authorities', 'local', 'root.crt');
  assert.ok(existsSync(rootFile), 'the local root certificate is in the data folder');
});

after(async () => {
  for (const c of contexts) await c.close();
  await nc?.stop();
  cleanup?.();
});

/** A home folder with an NSS database, as Chromium on Linux reads it; with the root trusted for websites. */
function homeWithNss(name: string, trustRoot: boolean): string {
  const home = path.join(dir, name);
  const db = path.join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password'], { stdio: 'pipe' });
  if (trustRoot)
    execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'nodecaddy', '-i', rootFile], {
      stdio: 'pipe',
    });
  return home;
}

async function browser(home: string): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(path.join(home, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: home },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // The site listens on 127.0.0.1 only; keep Chromium from trying ::1 for localhost first.
      '--host-resolver-rules=MAP localhost 127.0.0.1',
    ],
    timeout: 60_000,
  });
  contexts.push(context);
  return context;
}

test(
  'Chromium trusting the local root loads the page, its script and stylesheet over HTTP/2',
  {
    skip,
    timeout: 120_000,
  },
  async () => {
    const context = await browser(homeWithNss('home-trusting', true));
    const page = await context.newPage();
    const response = await page.goto(`${origin}/`);
    assert.ok(response);
    assert.equal(response.status(), 200);
    const security = await response.securityDetails();
    assert.equal(security?.issuer, 'nodecaddy Local Authority - Root');
    assert.equal(security?.subjectName, 'localhost');
    // Run in the page (strings: this project's TypeScript has no DOM types).
    await page.waitForFunction("document.getElementById('state').textContent === 'script ran'");
    const seen = await page.evaluate<{
      navigation: string;
      resources: Record<string, string>;
      background: string;
    }>(`({
    navigation: performance.getEntriesByType('navigation')[0].nextHopProtocol,
    resources: Object.fromEntries(
      performance.getEntriesByType('resource').map((r) => [new URL(r.name).pathname, r.nextHopProtocol]),
    ),
    background: getComputedStyle(document.body).backgroundColor,
  })`);
    assert.equal(seen.navigation, 'h2');
    assert.equal(seen.resources['/style.css'], 'h2');
    assert.equal(seen.resources['/app.js'], 'h2');
    assert.equal(seen.background, 'rgb(1, 2, 3)');
    await page.close();
  },
);

test('Chromium without the root trusted refuses the certificate', { skip, timeout: 120_000 }, async () => {
  const context = await browser(homeWithNss('home-untrusting', false));
  const page = await context.newPage();
  await assert.rejects(page.goto(`${origin}/`), /net::ERR_CERT_AUTHORITY_INVALID/);
  await page.close();
});
