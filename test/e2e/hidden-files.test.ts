// What the file server and browse never show: dotfiles (except /.well-known/), `hide` patterns, and the files
// the config itself uses (htpasswd, access and error logs with their backups), through the real binary.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SiteConfig } from '../../src/core/site.js';
import { hideFile } from '../../src/core/files/hidden.js';
import { loadError } from '../helpers/inprocess.js';
import { request, waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let main: number;
let open: number;

const FILES: Record<string, string> = {
  '.env': 'SECRET=1',
  '.git/config': '[core]',
  '.htpasswd': 'x:y',
  'sub/.hidden.txt': 'hidden',
  'sub/seen.txt': 'seen',
  '.well-known/acme-challenge/token': 'token',
  'normal.txt': 'normal',
  'notes.bak': 'backup',
  'drafts/x.txt': 'draft',
  'private/a.txt': 'members',
  'users.htpasswd': 'admin:{PLAIN}pw\n',
  'logs/access-2026-01-01T00-00-00.000.log': 'an old backup',
};

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  for (const [name, body] of Object.entries(FILES)) {
    mkdirSync(path.dirname(path.join(www, name)), { recursive: true });
    writeFileSync(path.join(www, name), body);
  }
  [main, open] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(
    conf,
    `127.0.0.1:${main} {
	root www
	browse /
	log / www/logs/access.log
	errors www/logs/errors.log
	basicauth /private admin htpasswd=users.htpasswd
	hide *.bak ./www/drafts
}
127.0.0.1:${open} {
	root www
	dotfiles allow
}
`,
  );
  nc = await startNodecaddy(['-conf', conf, '-workers', '1'], { cwd: dir, listeners: 2 });
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const status = async (port: number, p: string) => (await request(port, p)).status;
const listing = async (p: string) => {
  const r = await request(main, p, { headers: { Accept: 'application/json' } });
  assert.equal(r.status, 200, p);
  return (JSON.parse(r.body) as { Name: string }[]).map((i) => i.Name).sort();
};

describe('hidden files', () => {
  test('dotfiles are 404 by default, /.well-known/ is served', async () => {
    for (const p of ['/.env', '/.git/config', '/.git/', '/.htpasswd', '/sub/.hidden.txt', '/%2eenv'])
      assert.equal(await status(main, p), 404, p);
    assert.equal((await request(main, '/.well-known/acme-challenge/token')).body, 'token');
    assert.equal((await request(main, '/normal.txt')).body, 'normal');
  });

  test('hide: a name glob anywhere, a directory and everything below it', async () => {
    for (const p of ['/notes.bak', '/drafts/x.txt', '/drafts/']) assert.equal(await status(main, p), 404, p);
  });

  test('files the config uses: htpasswd, the access and error logs (made after loading), log backups', async () => {
    await waitFor(async () => (await request(main, '/normal.txt')).status === 200, 5000, 'a logged request');
    for (const p of [
      '/users.htpasswd',
      '/logs/access.log',
      '/logs/errors.log',
      '/logs/access-2026-01-01T00-00-00.000.log',
    ])
      assert.equal(await status(main, p), 404, p);
  });

  test('browse lists none of them, and lists /.well-known/', async () => {
    assert.deepEqual(await listing('/'), ['.well-known', 'logs', 'normal.txt', 'private', 'sub']);
    assert.deepEqual(await listing('/sub/'), ['seen.txt']);
    assert.deepEqual(await listing('/logs/'), []);
  });

  test('dotfiles allow serves them again for its site; config files stay hidden from every site', async () => {
    assert.equal((await request(open, '/.env')).body, 'SECRET=1');
    assert.equal((await request(open, '/.git/config')).body, '[core]');
    assert.equal((await request(open, '/notes.bak')).body, 'backup', '`hide` belongs to the other site');
    assert.equal(await status(open, '/users.htpasswd'), 404);
    assert.equal(await status(open, '/logs/access.log'), 404);
  });

  test('bad lines are load errors with their line', () => {
    assert.match(loadError('127.0.0.1:0 {\n dotfiles maybe\n}\n', dir), /Caddyfile:2 .*dotfiles allow\|hide/);
    assert.match(loadError('127.0.0.1:0 {\n hide\n}\n', dir), /Caddyfile:2 .*hide <path or glob>/);
  });
});

test('hideFile: a file that does not exist yet is hidden by its given and its real path', () => {
  const real = path.join(dir, 'real');
  mkdirSync(real);
  symlinkSync(real, path.join(dir, 'link'));
  const site = { hiddenFiles: [] as string[] } as unknown as SiteConfig;
  hideFile(site, path.join(dir, 'link', 'logs', 'new.log'));
  assert.deepEqual(site.hiddenFiles, [
    path.join(dir, 'link', 'logs', 'new.log'),
    path.join(real, 'logs', 'new.log'),
  ]);
});
