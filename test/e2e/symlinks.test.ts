// Symlinks below a site root, through the real nodecaddy process: followed by default (as Caddy and nginx,
// so Debian's WordPress and DokuWiki work), `symlinks inside` keeps every link inside the root, `symlinks
// owner` follows only links owned by their target's owner. A refused link is logged once.
import assert from 'node:assert/strict';
import { lchownSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;
/** `symlinks owner` needs a link owned by someone else: only root can make one. */
const asRoot = process.getuid?.() === 0;

function write(file: string, body: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, body);
}

before(async () => {
  ({ dir, cleanup } = tempDir());
  const root = path.join(dir, 'www');
  const shared = path.join(dir, 'shared');
  write(path.join(root, 'index.html'), 'home');
  write(path.join(root, 'app', 'index.txt'), 'app front');
  write(path.join(root, 'inner', 'in.txt'), 'inside target');
  write(path.join(shared, 'tpl', 'style.css'), 'body{}');
  write(path.join(shared, 'tpl', 'about.html'), 'about from outside');
  write(path.join(shared, 'lib.js'), 'var _ = 1;');
  write(path.join(shared, 'theirs.txt'), 'owned by root');
  // As Debian's packages do: a directory and a file of the document root live elsewhere.
  symlinkSync(path.join(shared, 'tpl'), path.join(root, 'tpl'));
  symlinkSync(path.join(shared, 'lib.js'), path.join(root, 'lib.js'));
  symlinkSync(path.join(root, 'inner'), path.join(root, 'innerlink'));
  symlinkSync(path.join(shared, 'theirs.txt'), path.join(root, 'foreign.txt'));
  if (asRoot) lchownSync(path.join(root, 'foreign.txt'), 4321, 4321);
  const site = (host: string, extra: string) =>
    `${host}:0 {\n\troot ${root}\n\t${extra}\n\text .html\n\tbrowse /tpl\n\tbrowse /inner\n` +
    `\trewrite /app {\n\t\tto {path} /tpl/style.css /app/index.txt\n\t}\n}\n`;
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(
    conf,
    site('follow.test', '') + site('inside.test', 'symlinks inside') + site('owner.test', 'symlinks owner'),
  );
  nc = await startNodecaddy(['-conf', conf, '-workers', '1', '-log-format', 'json']);
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const get = (host: string, p: string, headers: Record<string, string> = {}) =>
  request(port, p, { headers: { Host: host, ...headers } });

async function listing(host: string, p: string): Promise<string[]> {
  const r = await get(host, p, { Accept: 'application/json' });
  assert.equal(r.status, 200, `${host}${p}`);
  return (JSON.parse(r.body) as { Name: string }[]).map((i) => i.Name).sort();
}

describe('symlinks follow (the default)', () => {
  test('a file and a directory linked from outside the root are served', async () => {
    assert.equal((await get('follow.test', '/lib.js')).body, 'var _ = 1;');
    const css = await get('follow.test', '/tpl/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.body, 'body{}');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal((await get('follow.test', '/innerlink/in.txt')).body, 'inside target');
  });

  test('browse lists linked entries; ext and rewrite candidates count through links', async () => {
    assert.deepEqual(await listing('follow.test', '/tpl/'), ['about.html', 'style.css']);
    assert.equal((await get('follow.test', '/tpl/about')).body, 'about from outside');
    assert.equal((await get('follow.test', '/app/nothing')).body, 'body{}');
  });

  test('a changed or replaced file outside the root is served new at once', async () => {
    const shared = path.join(dir, 'shared');
    assert.equal((await get('follow.test', '/lib.js')).body, 'var _ = 1;');
    writeFileSync(path.join(shared, 'lib.js'), 'var _ = 2;');
    assert.equal((await get('follow.test', '/lib.js')).body, 'var _ = 2;');
    // The linked directory itself replaced (a package upgrade renaming a new tree into place).
    assert.equal((await get('follow.test', '/tpl/style.css')).body, 'body{}');
    write(path.join(dir, 'tpl.new', 'style.css'), 'body{color:red}');
    renameSync(path.join(shared, 'tpl'), path.join(dir, 'tpl.old'));
    renameSync(path.join(dir, 'tpl.new'), path.join(shared, 'tpl'));
    assert.equal((await get('follow.test', '/tpl/style.css')).body, 'body{color:red}');
    assert.equal((await get('follow.test', '/tpl/about.html')).status, 404);
    renameSync(path.join(shared, 'tpl'), path.join(dir, 'tpl.new'));
    renameSync(path.join(dir, 'tpl.old'), path.join(shared, 'tpl'));
    assert.equal((await get('follow.test', '/tpl/about.html')).body, 'about from outside');
  });
});

describe('symlinks inside', () => {
  test('links that leave the root are refused; links inside it are followed', async () => {
    for (const p of ['/lib.js', '/tpl/style.css', '/tpl/', '/tpl/about']) {
      assert.equal((await get('inside.test', p)).status, 404, p);
    }
    assert.equal((await get('inside.test', '/innerlink/in.txt')).body, 'inside target');
    assert.equal((await get('inside.test', '/index.html')).status, 301, 'the rest of the site is served');
  });

  test('browse does not list them, rewrite does not take them as candidates', async () => {
    const names = await listing('inside.test', '/inner/');
    assert.deepEqual(names, ['in.txt']);
    const app = await get('inside.test', '/app/nothing');
    assert.equal(app.body, 'app front');
  });

  test('a refused link is logged once, not once per request', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await get('inside.test', '/tpl/style.css')).status, 404);
      assert.equal((await get('inside.test', '/tpl/about.html')).status, 404);
    }
    const lines = nc
      .stderr()
      .split('\n')
      .filter((l) => l.includes('symlink refused') && l.includes(path.join(dir, 'www', 'tpl')));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /its target is outside the root \(symlinks inside\)/);
  });
});

describe('symlinks owner', { skip: asRoot ? false : 'needs root to give a link another owner' }, () => {
  test('follows links owned by their target owner, refuses the others', async () => {
    assert.equal((await get('owner.test', '/lib.js')).body.startsWith('var _ ='), true);
    assert.equal((await get('owner.test', '/tpl/style.css')).status, 200);
    assert.equal((await get('owner.test', '/foreign.txt')).status, 404);
    assert.equal((await get('follow.test', '/foreign.txt')).body, 'owned by root');
    assert.equal((await get('inside.test', '/foreign.txt')).status, 404);
    assert.ok(
      nc.stderr().includes('its owner does not own its target (symlinks owner)'),
      'the refusal is logged',
    );
  });
});
