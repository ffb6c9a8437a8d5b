// rewrite, ext, status, mime and internal, end to end through the real nodecaddy process.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

function files(root: string, map: Record<string, string>): void {
  for (const [name, body] of Object.entries(map)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), body);
  }
}

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  files(www, {
    'posts/hello-12.html': 'post 12',
    'app/real.txt': 'real file',
    'app/dir/index.html': 'app dir index',
    'app/index.txt': 'app fallback',
    'images.txt': 'images',
    'v2.txt': 'version 2',
    'show.txt': 'show',
    'x.txt': 'catch',
    'pages/about.html': 'about page',
    'notes.txt': 'notes',
    'file.foo': 'foo',
    'FILE.FOO': 'FOO',
    'x.data': 'data',
    'internal/secret.txt': 'secret',
    nothing: '',
  });
  files(path.join(dir, 'outside'), { 'secret.html': 'outside root' });
  symlinkSync(path.join(dir, 'outside'), path.join(www, 'out'));
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(
    conf,
    `127.0.0.1:0 {
	root ${www}
	symlinks inside
	rewrite ^/blog/(\\d+)/(\\w+)$ /posts/{2}-{1}.html
	rewrite /app {
		to {path} {path}/ /app/index.txt?from={path}&{query}
	}
	rewrite /only {
		ext .jpg !.png
		to /images.txt
	}
	rewrite /hdr {
		if {>X-Version} is 2
		to /v2.txt
	}
	rewrite /echo {
		r ^/(\\w+)/(.*)$
		to /show.txt?cap={2}
	}
	rewrite /sneak {
		to /internal/secret.txt
	}
	rewrite /fixed {
		to /app/dir/
	}
	rewrite not ^/[a-zA-Z0-9] /x.txt
	ext .html .txt
	header / {
		X-Rewrite-Uri "{rewrite_uri}"
		X-Uri "{uri}"
		X-Cap "{1}"
	}
	header /go X-Accel-Redirect /internal/secret.txt
	status 403 /forbidden
	status 204 /nothing
	status 302 /gone
	mime .foo text/x-foo
	mime {
		.data application/x-data
	}
	internal /internal
}
127.0.0.1:0/pre {
	root ${www}
	rewrite {
		to {path} {path}/ /app/index.txt
	}
}
`,
  );
  nc = await startNodecaddy(['-conf', conf]);
  port = nc.ports[0];
});

after(async () => {
  await nc?.stop();
  cleanup();
});

test('rewrite simple form: regex captures fill {1}.. and {uri} stays the original', async () => {
  const r = await request(port, '/blog/12/hello?x=1');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'post 12');
  assert.equal(r.headers['x-rewrite-uri'], '/posts/hello-12.html?x=1');
  assert.equal(r.headers['x-uri'], '/blog/12/hello?x=1');
  assert.equal(r.headers['x-cap'], '12');
});

test('rewrite to: the first candidate that exists, file or directory; else the last, with its query', async () => {
  const file = await request(port, '/app/real.txt');
  assert.equal(file.body, 'real file');
  assert.equal(file.headers['x-rewrite-uri'], '/app/real.txt');
  const dirIndex = await request(port, '/app/dir/');
  assert.equal(dirIndex.status, 200);
  assert.equal(dirIndex.body, 'app dir index');
  assert.equal(dirIndex.headers['x-rewrite-uri'], '/app/dir/');
  const fallback = await request(port, '/app/missing?x=1');
  assert.equal(fallback.status, 200);
  assert.equal(fallback.body, 'app fallback');
  assert.equal(fallback.headers['x-rewrite-uri'], '/app/index.txt?from=/app/missing&x=1');
  // Paths are cleaned before matching: this one is not under /app, and nothing outside root is served.
  const climb = await request(port, '/app/../../outside/secret.html');
  assert.equal(climb.status, 404);
  assert.notEqual(climb.body, 'outside root');
});

test('rewrite to {path}/: a directory asked for without its slash is redirected to the slash form', async () => {
  // As Caddy 2 and nginx: the page must not render at a URL whose relative links break (`/wp-admin`).
  const dir = await request(port, '/app/dir?q=1&r=a%20b');
  assert.equal(dir.status, 301);
  assert.equal(dir.headers.location, '/app/dir/?q=1&r=a%20b');
  assert.equal(dir.body, '');
  const head = await request(port, '/app/dir', { method: 'HEAD' });
  assert.equal(head.status, 301);
  assert.equal(head.headers.location, '/app/dir/');
  // The site's path prefix stays in the Location.
  const prefixed = await request(port, '/pre/app/dir?y=2');
  assert.equal(prefixed.status, 301);
  assert.equal(prefixed.headers.location, '/pre/app/dir/?y=2');
  assert.equal((await request(port, '/pre/app/dir/')).body, 'app dir index');
  assert.equal((await request(port, '/pre/app/nothing')).body, 'app fallback');
  // Another directory candidate is an internal rewrite, not a redirect; so is a path that has its slash.
  const fixed = await request(port, '/fixed');
  assert.equal(fixed.status, 200);
  assert.equal(fixed.body, 'app dir index');
  assert.equal(fixed.headers['x-rewrite-uri'], '/app/dir/');
});

test('rewrite ext: listed extensions only, ! excludes', async () => {
  const jpg = await request(port, '/only/a.jpg');
  assert.equal(jpg.body, 'images');
  assert.equal((await request(port, '/only/a.png')).status, 404);
  assert.equal((await request(port, '/only/a.gif')).status, 404);
});

test('rewrite if, regex against the base-stripped path, and not', async () => {
  assert.equal((await request(port, '/hdr', { headers: { 'X-Version': '2' } })).body, 'version 2');
  assert.equal((await request(port, '/hdr')).status, 404);
  const echo = await request(port, '/echo/a/b');
  assert.equal(echo.body, 'show');
  // The regex sees `/a/b` (base `/echo` stripped, leading slash kept).
  assert.equal(echo.headers['x-rewrite-uri'], '/show.txt?cap=b');
  assert.equal(echo.headers['x-cap'], 'a');
  const negated = await request(port, '/_x');
  assert.equal(negated.body, 'catch');
  assert.equal((await request(port, '/zzz')).status, 404, 'a path the negated regex matches is left alone');
});

test('ext: tries extensions in order for paths without one, never outside root', async () => {
  const about = await request(port, '/pages/about?y=2');
  assert.equal(about.status, 200);
  assert.equal(about.body, 'about page');
  assert.equal(about.headers['x-rewrite-uri'], '/pages/about.html?y=2');
  assert.equal((await request(port, '/notes')).body, 'notes');
  assert.equal((await request(port, '/pages/about/')).status, 404, 'a trailing slash is not tried');
  const out = await request(port, '/out/secret');
  assert.equal(out.status, 404);
  assert.equal(out.headers['x-rewrite-uri'], '/out/secret', 'a symlink out of root does not count');
});

test('status: < 400 written with no body, >= 400 rendered as an error page, by path prefix', async () => {
  const forbidden = await request(port, '/forbidden/deeper');
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body, '403 Forbidden\n');
  const nothing = await request(port, '/nothing');
  assert.equal(nothing.status, 204);
  assert.equal(nothing.body, '');
  const gone = await request(port, '/gone');
  assert.equal(gone.status, 302);
  assert.equal(gone.headers['content-length'], '0');
  assert.equal(gone.body, '');
});

test('mime: the type for an extension overrides the file server, case-sensitive', async () => {
  const foo = await request(port, '/file.foo');
  assert.equal(foo.headers['content-type'], 'text/x-foo');
  assert.equal(foo.body, 'foo');
  assert.equal((await request(port, '/x.data')).headers['content-type'], 'application/x-data');
  assert.notEqual((await request(port, '/FILE.FOO')).headers['content-type'], 'text/x-foo');
  const missing = await request(port, '/missing.foo');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['content-type'], 'text/plain; charset=utf-8', 'error pages keep their type');
});

test('internal: 404 from outside, even through a rewrite; reachable through X-Accel-Redirect', async () => {
  assert.equal((await request(port, '/internal/secret.txt')).status, 404);
  assert.equal((await request(port, '/sneak')).status, 404);
  const go = await request(port, '/go');
  assert.equal(go.status, 200);
  assert.equal(go.body, 'secret');
  assert.equal(go.headers['x-accel-redirect'], undefined);
  assert.equal(go.headers['content-length'], '6');
});
