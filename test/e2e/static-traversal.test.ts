// A battery of crafted request targets sent unnormalized to the real nodecaddy process: nothing outside
// root, no Caddyfile or imported file, no 500, ever. It runs against a site with the default symlink rule
// (follow, as Caddy and nginx: only the admin's own links lead out) and one with `symlinks inside`.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { rawRequest } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

before(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir());
  const root = path.join(dir, 'site');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  mkdirSync(path.join(dir, 'outside'));
  writeFileSync(path.join(dir, 'secret.txt'), 'TOPSECRET');
  writeFileSync(path.join(dir, 'outside', 'secret.txt'), 'TOPSECRET');
  writeFileSync(path.join(root, 'public.txt'), 'public');
  writeFileSync(path.join(root, 'sub', 'x.txt'), 'x');
  symlinkSync(path.join(dir, 'secret.txt'), path.join(root, 'outlink.txt'));
  symlinkSync(path.join(dir, 'outside'), path.join(root, 'outdir'));
  symlinkSync(path.join(root, 'Caddyfile'), path.join(root, 'cfglink'));
  // The Caddyfile and an imported file live inside the root: both must stay invisible.
  writeFileSync(path.join(root, 'imported.conf'), '# TOPSECRET import\n');
  writeFileSync(
    path.join(root, 'Caddyfile'),
    `127.0.0.1:0 {\n\troot ${root}\n\timport imported.conf\n}\n` +
      `inside.test:0 {\n\troot ${root}\n\tsymlinks inside\n}\n# TOPSECRET\n`,
  );
  nc = await startNodecaddy(['-conf', path.join(root, 'Caddyfile')]);
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const ATTACKS = [
  '/../secret.txt',
  '/../../../../../../../etc/passwd',
  '/..%2fsecret.txt',
  '/%2e%2e/secret.txt',
  '/%2e%2e%2fsecret.txt',
  '/%2E%2E%2Fsecret.txt',
  '/.%2e/secret.txt',
  '/%2e./secret.txt',
  '/%252e%252e/secret.txt',
  '/..%252fsecret.txt',
  '/..\\secret.txt',
  '/..%5csecret.txt',
  '/%5c..%5csecret.txt',
  '/sub/..%5c..%5csecret.txt',
  '/sub/../../secret.txt',
  '/sub/..%2f..%2fsecret.txt',
  '/./../secret.txt',
  '//../secret.txt',
  '/....//secret.txt',
  '/..;/secret.txt',
  '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
  '/%c0%ae%c0%ae/secret.txt',
  '/%c0%afsecret.txt',
  '/%00',
  '/public.txt%00.html',
  '/..%00/secret.txt',
  '/%ff',
  '/%',
  '/%zz/secret.txt',
  '/outdir/../secret.txt',
  '/outdir/../../secret.txt',
  '/outdir/..%2f..%2fsecret.txt',
  '/outdir/%2e%2e/%2e%2e/secret.txt',
  '/outdir/',
  '/outdir',
  '/Caddyfile',
  '/Caddyfile/',
  '/./Caddyfile',
  '/sub/../Caddyfile',
  '/%43addyfile',
  '/Caddyfile%2f',
  '/cfglink',
  '/imported.conf',
  '/sub/%2e%2e/imported.conf',
  '/%20../secret.txt',
  '/' + 'a/'.repeat(2000) + 'x',
  '/' + 'x'.repeat(5000),
];

/** The symlinks the admin put in root that lead out of it: followed by default, refused by `symlinks inside`. */
const OWN_LINKS_OUT = ['/outlink.txt', '/outdir/secret.txt'];

for (const host of ['127.0.0.1', 'inside.test']) {
  const attacks = host === 'inside.test' ? [...ATTACKS, ...OWN_LINKS_OUT] : ATTACKS;
  test(`traversal battery (${host}): ${attacks.length} crafted paths never leave root, never 500`, async () => {
    assert.ok(attacks.length >= 30);
    await battery(host, attacks);
  });
}

test('the default follows the links the admin put in root (the battery above shows `symlinks inside` refusing them)', async () => {
  for (const target of OWN_LINKS_OUT) {
    const res = await rawRequest(
      port,
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
    assert.match(res, /^HTTP\/1\.1 200 /, target);
    assert.match(res, /\r\n\r\nTOPSECRET$/, target);
  }
});

async function battery(host: string, attacks: readonly string[]): Promise<void> {
  for (const target of attacks) {
    const res = await rawRequest(
      port,
      `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(res)?.[1]);
    assert.ok(!res.includes('TOPSECRET'), `${target} leaked: ${res}`);
    assert.ok(!res.includes('is not served'), `${target} never reached the site: ${res}`);
    assert.ok(status === 400 || status === 404 || status === 301, `${target} → ${status}\n${res}`);
    if (status === 301) {
      const location = /\r\nLocation: ([^\r]*)/i.exec(res)?.[1] ?? '';
      assert.match(location, /^\/(?!\/)/, `${target} redirects off-site: ${location}`);
    }
  }
  // Absolute-form targets are normalized the same way.
  const abs = await rawRequest(
    port,
    `GET http://${host}/../secret.txt HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(abs, /^HTTP\/1\.1 404 /);
}

test('the same server does serve what is inside root', async () => {
  for (const target of ['/public.txt', '/sub/../public.txt', '/sub/%2e%2e/public.txt', '/./public.txt']) {
    const res = await rawRequest(
      port,
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
    assert.match(res, /^HTTP\/1\.1 200 /, target);
    assert.match(res, /\r\n\r\npublic$/, target);
  }
  const dirRedirect = await rawRequest(
    port,
    'GET //sub HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
  );
  assert.match(dirRedirect, /\r\nLocation: \/sub\/\r\n/);
});
