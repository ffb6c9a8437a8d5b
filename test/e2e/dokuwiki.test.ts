// A real application nobody here wrote: Debian's `dokuwiki` package through `fastcgi` and php-fpm, with clean
// URLs, run by the real nodecaddy binary with the README's DokuWiki Caddyfile. The package's code is used as
// installed (its `lib/tpl` and `lib/plugins` are symlinks out of the document root); its configuration and
// data are a private copy in a temp dir, loaded through php-fpm's auto_prepend_file in our own pool, so the
// system's wiki (/etc/dokuwiki, /var/lib/dokuwiki) is never touched.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { phpFpmSkip, startPhpFpm, type PhpFpm } from '../helpers/phpfpm.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

const DOKUWIKI = '/usr/share/dokuwiki';
const SYSTEM_CONF = '/etc/dokuwiki';
const README = new URL('../../../README.md', import.meta.url);

/** False, or why the test skips (outside CI only: in CI a missing package must fail the run). */
function skip(): string | false {
  const fpm = phpFpmSkip();
  if (fpm) return fpm;
  if (process.env.CI || existsSync(path.join(DOKUWIKI, 'doku.php'))) return false;
  return "Debian's dokuwiki package is not installed (apt-get install dokuwiki)";
}

/** The README's DokuWiki Caddyfile, on our address and php-fpm socket. */
function readmeCaddyfile(socket: string): string {
  const text = readFileSync(README, 'utf8');
  const marker = text.indexOf('test/e2e/dokuwiki.test.ts runs this very Caddyfile');
  assert.ok(marker > 0, 'the README marks the DokuWiki recipe');
  const block = /```\n([\s\S]*?)```/.exec(text.slice(marker));
  assert.ok(block, 'a code block follows the marker');
  const caddyfile = block[1];
  assert.match(caddyfile, /^wiki\.example\.com \{$/m);
  assert.match(caddyfile, /\/run\/php\/php8\.2-fpm\.sock/);
  return caddyfile.replace('wiki.example.com', '127.0.0.1:0').replace('/run/php/php8.2-fpm.sock', socket);
}

/** Just enough of a browser: a cookie jar, and the hidden fields of a form. */
class Browser {
  private readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async fetch(p: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('Cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(new URL(p, this.base), { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (value === 'deleted' || /Max-Age=0/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  async page(p: string): Promise<string> {
    const res = await this.fetch(p);
    assert.equal(res.status, 200, p);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8', p);
    return res.text();
  }
}

/** The `name=value` hidden inputs of the form with this id. */
function hiddenFields(html: string, formId: string): Map<string, string> {
  const start = html.indexOf(`id="${formId}"`);
  assert.ok(start > 0, `form ${formId}`);
  const form = html.slice(start, html.indexOf('</form>', start));
  const fields = new Map<string, string>();
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g))
    fields.set(m[1], m[2]);
  return fields;
}

const unescape = (s: string) => s.replace(/&amp;/g, '&');

describe('DokuWiki (Debian package) through fastcgi and php-fpm', { skip: skip() }, () => {
  let tmp: { dir: string; cleanup: () => void };
  let fpm: PhpFpm;
  let nc: Nodecaddy;
  let wiki: Browser;
  const page = `nodecaddy-e2e-${process.pid}`;
  const logo = readFileSync(path.join(DOKUWIKI, 'lib/tpl/dokuwiki/images/logo.png'));

  before(async () => {
    tmp = tempDir('nodecaddy-dokuwiki-');
    const conf = path.join(tmp.dir, 'conf');
    const data = path.join(tmp.dir, 'data');
    mkdirSync(conf);
    // The package's configuration (files only: its users and ACL are symlinks into /var/lib/dokuwiki), then ours.
    for (const name of readdirSync(SYSTEM_CONF)) {
      const file = path.join(SYSTEM_CONF, name);
      if (statSync(file).isFile() && !name.startsWith('users.auth') && !name.startsWith('acl.auth'))
        copyFileSync(file, path.join(conf, name));
    }
    writeFileSync(
      path.join(conf, 'local.php'),
      `<?php\n$conf['title'] = 'nodecaddy e2e';\n$conf['savedir'] = '${data}';\n$conf['useacl'] = 1;\n` +
        `$conf['superuser'] = '@admin';\n$conf['userewrite'] = 1;\n$conf['updatecheck'] = 0;\n`,
    );
    writeFileSync(path.join(conf, 'acl.auth.php'), '*\t@ALL\t1\n*\t@user\t8\n');
    // DokuWiki verifies plain SHA-1 hex among its password hashes: enough for a throwaway test user.
    const sha1 = createHash('sha1').update('correct horse').digest('hex');
    writeFileSync(path.join(conf, 'users.auth.php'), `editor:${sha1}:Eddie Editor:editor@example.com:user\n`);
    for (const d of [
      'pages',
      'meta',
      'media',
      'media_meta',
      'media_attic',
      'attic',
      'cache',
      'index',
      'locks',
      'tmp',
      'log',
    ])
      mkdirSync(path.join(data, d), { recursive: true });
    mkdirSync(path.join(data, 'media', 'wiki'));
    writeFileSync(path.join(data, 'media', 'wiki', 'nodecaddy.png'), logo);
    writeFileSync(
      path.join(data, 'pages', 'start.txt'),
      '====== Welcome to the nodecaddy wiki ======\n\n{{wiki:nodecaddy.png?64|an image}}\n\nSee [[playground:start]].\n',
    );
    // Our php-fpm pool reads this before every script: DokuWiki then takes our conf instead of /etc/dokuwiki.
    const prepend = path.join(tmp.dir, 'prepend.php');
    writeFileSync(
      prepend,
      `<?php\ndefine('DOKU_CONF', '${conf}/');\ndefine('DOKU_MAIN_CONF', '${conf}/');\n`,
    );
    mkdirSync(path.join(tmp.dir, 'sessions'));
    fpm = await startPhpFpm({
      children: 4,
      ini: { auto_prepend_file: prepend, 'session.save_path': path.join(tmp.dir, 'sessions') },
    });
    const caddyfile = path.join(tmp.dir, 'Caddyfile');
    writeFileSync(caddyfile, readmeCaddyfile(fpm.socket));
    nc = await startNodecaddy(['-conf', caddyfile, '-workers', '1']);
    wiki = new Browser(`http://127.0.0.1:${nc.ports[0]}`);
  });

  after(async () => {
    await nc?.stop();
    await fpm?.stop();
    tmp?.cleanup();
  });

  test('the start page, with its stylesheet, scripts and images (some behind symlinks out of the root)', async () => {
    const html = await wiki.page('/');
    assert.match(html, /<h1[^>]*>Welcome to the nodecaddy wiki<\/h1>/);
    const css = [...html.matchAll(/<link rel="stylesheet" href="([^"]+)"/g)].map((m) => unescape(m[1]));
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => unescape(m[1]));
    const images = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => unescape(m[1]));
    assert.ok(css.length >= 1 && scripts.length >= 1, `${css.length} stylesheets, ${scripts.length} scripts`);
    for (const href of css) {
      const res = await wiki.fetch(href);
      assert.equal(res.status, 200, href);
      assert.equal(res.headers.get('content-type'), 'text/css; charset=utf-8', href);
      const text = await res.text();
      assert.ok(text.length > 10_000, `${href}: ${text.length} bytes of CSS`);
      // Every image the stylesheets use: DokuWiki's, its template's and its plugins' (symlinks out of the root).
      const urls = new Set<string>();
      for (const m of text.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g))
        if (!m[1].startsWith('data:') && !m[1].startsWith('#')) urls.add(new URL(m[1], wiki.base).pathname);
      const linked = [...urls].filter((u) => u.startsWith('/lib/tpl/') || u.startsWith('/lib/plugins/'));
      assert.ok(urls.size > 20 && linked.length > 0, `${urls.size} images, ${linked.length} behind symlinks`);
      for (const u of urls) {
        const img = await wiki.fetch(u);
        assert.equal(img.status, 200, u);
        assert.match(img.headers.get('content-type') ?? '', /^image\//, u);
        await img.arrayBuffer();
      }
    }
    for (const src of scripts) {
      const res = await wiki.fetch(src);
      assert.equal(res.status, 200, src);
      assert.equal(res.headers.get('content-type'), 'application/javascript; charset=utf-8', src);
    }
    assert.ok(images.includes('/lib/tpl/dokuwiki/images/logo.png'), images.join(' '));
    const media = images.find((i) => i.startsWith('/_media/wiki:nodecaddy.png'));
    assert.ok(media, `the page's own image: ${images.join(' ')}`);
    for (const src of images) {
      const res = await wiki.fetch(src);
      assert.equal(res.status, 200, src);
      assert.match(res.headers.get('content-type') ?? '', /^image\//, src);
    }
    const served = Buffer.from(await (await wiki.fetch('/lib/tpl/dokuwiki/images/logo.png')).arrayBuffer());
    assert.ok(served.equals(logo), 'the template logo, through the symlink');
    assert.equal((await wiki.fetch('/lib/tpl')).status, 301, 'a directory gets its slash');
    assert.equal((await wiki.fetch('/inc/init.php')).status, 404, 'what DokuWiki denies stays denied');
    assert.equal((await wiki.fetch('/VERSION')).status, 404);
  });

  test('login, then saving a page', async () => {
    const login = await wiki.page('/start?do=login');
    const fields = hiddenFields(login, 'dw__login');
    const form = new URLSearchParams([...fields, ['u', 'editor'], ['p', 'correct horse']]);
    const res = await wiki.fetch('/start', { method: 'POST', body: form });
    assert.equal(res.status, 302);
    assert.match(res.headers.get('location') ?? '', /\/start$/);
    assert.match(await wiki.page('/start'), /Logged in as: <bdi>Eddie Editor<\/bdi>/);

    const edit = await wiki.page(`/playground:${page}?do=edit`);
    const editFields = hiddenFields(edit, 'dw__editform');
    assert.ok(editFields.get('sectok'), 'a security token for the logged-in user');
    const save = new URLSearchParams([
      ...editFields,
      ['wikitext', '====== Served by nodecaddy ======\n\nThe word quokkaflux appears only here.\n'],
      ['summary', 'e2e'],
      ['do[save]', '1'],
    ]);
    const saved = await wiki.fetch(`/playground:${page}?do=edit`, { method: 'POST', body: save });
    assert.equal(saved.status, 302);
    const shown = await wiki.page(`/playground:${page}`);
    assert.match(shown, /<h1[^>]*>Served by nodecaddy<\/h1>/);
    assert.match(shown, /The word quokkaflux appears only here\./);
    assert.ok(
      existsSync(path.join(tmp.dir, 'data', 'pages', 'playground', `${page}.txt`)),
      'saved in our copy',
    );
  });

  test('a media upload (multipart through fastcgi), then fetched back by its clean URL', async () => {
    const manager = await wiki.page('/start?do=media&ns=playground&tab_files=upload');
    const action = /<form id="dw__upload"[^>]* action="([^"]+)"/.exec(manager);
    assert.ok(action, 'the upload form');
    const form = new FormData();
    for (const [k, v] of hiddenFields(manager, 'dw__upload')) form.append(k, v);
    form.append('mediaid', `${page}.png`);
    form.append('upload', new Blob([logo], { type: 'image/png' }), 'logo.png');
    const res = await wiki.fetch(unescape(action[1]), { method: 'POST', body: form });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Upload successful/);
    const back = await wiki.fetch(`/_media/playground:${page}.png`);
    assert.equal(back.status, 200);
    assert.equal(back.headers.get('content-type'), 'image/png');
    assert.ok(Buffer.from(await back.arrayBuffer()).equals(logo), 'the same bytes');
  });

  test('search finds the saved page once the indexer ran', async () => {
    // What the 1x1 image at the bottom of every page does in a browser: each request runs one pending task
    // (trimming the change logs, indexing, the sitemap…), so a browser viewing pages gets there in a few.
    const hit = new RegExp(`<a href="/playground:${page}\\?s\\[\\]=quokkaflux"`);
    await waitFor(
      async () => {
        const task = await wiki.fetch(`/lib/exe/taskrunner.php?id=playground:${page}`);
        assert.equal(task.status, 200);
        assert.equal(task.headers.get('content-type'), 'image/gif');
        await task.arrayBuffer();
        return hit.test(await wiki.page('/start?do=search&q=quokkaflux'));
      },
      15_000,
      'the page in the search results',
    );
  });

  test("the system's wiki was not touched", () => {
    assert.equal(existsSync(`/var/lib/dokuwiki/data/pages/playground/${page}.txt`), false);
    assert.equal(existsSync(`/var/lib/dokuwiki/data/media/playground/${page}.png`), false);
  });
});
