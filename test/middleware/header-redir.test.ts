// header and redir, end to end through the real nodecaddy process.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { rawRequest, request } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let port: number;

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  mkdirSync(path.join(www, 'nolm'), { recursive: true });
  writeFileSync(path.join(www, 'index.html'), 'home');
  writeFileSync(path.join(www, 'page.html'), 'home');
  writeFileSync(path.join(www, 'nolm', 'a.txt'), 'no last-modified');
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(
    conf,
    `127.0.0.1:0 {
	root ${www}
	header / X-Site a
	header / +X-Multi one
	header / {
		+X-Multi two
		-Server
		X-Path "{path} {?q}"
		X-Empty
	}
	header /api X-Api yes
	header /api Cache-Control
	header /nolm -Last-Modified
	redir /old /new
	redir /temp /elsewhere 307
	redir /meta "/target?a=<b>" meta
	redir /dir/rel sibling 302
	redir 308 {
		/v1 https://example.com{uri}
		/v2 /two
	}
	redir {
		if {>X-Go} is yes
		if {?q} starts_with abc
		if_op or
		/cond /conditional 302
	}
	redir {
		if {>User-Agent} has bot
		if {method} not_match ^(POST|PUT)$
		/bot /robots.txt
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

test('header: set, +add, -remove, placeholders and the empty block value, on every matching path', async () => {
  const r = await request(port, '/page.html?q=7');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'home');
  assert.equal(r.headers['x-site'], 'a');
  assert.equal(r.headers['x-multi'], 'one, two');
  assert.equal(r.headers.server, undefined, 'removed');
  assert.equal(r.headers['x-path'], '/page.html 7');
  assert.equal(r.headers['x-empty'], '');
  assert.equal(r.headers['x-api'], undefined, 'the /api rule does not match /page.html');
});

test('header: CR, LF and NUL from a placeholder never make a 500 or a header line of their own', async () => {
  const answer = await rawRequest(
    port,
    'GET /a%0d%0aX-Evil:%201?q=b%0d%0aSet-Cookie:%20s=1%00z%E2%82%AC HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
  );
  const head = answer.slice(0, answer.indexOf('\r\n\r\n'));
  assert.match(head, /^HTTP\/1\.1 404 /, 'the missing file, not a 500');
  const lines = head.split('\r\n');
  // The euro sign goes out as its UTF-8 bytes, once (the head is read back here as UTF-8).
  const euro = '€';
  assert.ok(lines.includes(`x-path: /a  X-Evil: 1 b  Set-Cookie: s=1z${euro}`), head);
  assert.ok(!lines.some((l) => /^(x-evil|set-cookie):/i.test(l)), head);
});

test('header: a path rule adds to the catch-all ones; a bare name is its own value; error pages keep them', async () => {
  const r = await request(port, '/api/missing');
  assert.equal(r.status, 404);
  assert.equal(r.body, '404 Not Found\n');
  assert.equal(r.headers['x-api'], 'yes');
  assert.equal(r.headers['cache-control'], 'Cache-Control');
  assert.equal(r.headers['x-site'], 'a');
});

test('header: -Name is applied again when the inner handler adds the header later', async () => {
  const r = await request(port, '/nolm/a.txt');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'no last-modified');
  assert.equal(r.headers['last-modified'], undefined);
  const other = await request(port, '/page.html');
  assert.ok(other.headers['last-modified'], 'other paths keep it');
});

test('redir: 301 by default with Go-style body; HEAD and POST get no body; the match is exact', async () => {
  const r = await request(port, '/old?x=1');
  assert.equal(r.status, 301);
  assert.equal(r.headers.location, '/new');
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(r.body, '<a href="/new">Moved Permanently</a>.\n\n');
  const head = await request(port, '/old', { method: 'HEAD' });
  assert.equal(head.status, 301);
  assert.equal(head.body, '');
  const post = await request(port, '/old', { method: 'POST', body: 'x' });
  assert.equal(post.status, 301);
  assert.equal(post.headers['content-type'], undefined);
  assert.equal(post.body, '');
  assert.equal((await request(port, '/old/')).status, 404, 'no prefix match');
  assert.equal((await request(port, '/older')).status, 404);
});

test('redir: explicit code, relative target, block default code with placeholders', async () => {
  const t = await request(port, '/temp');
  assert.equal(t.status, 307);
  assert.equal(t.headers.location, '/elsewhere');
  assert.equal(t.body, '<a href="/elsewhere">Temporary Redirect</a>.\n\n');
  const rel = await request(port, '/dir/rel');
  assert.equal(rel.status, 302);
  assert.equal(rel.headers.location, '/dir/sibling');
  const v1 = await request(port, '/v1?x=1&y=2');
  assert.equal(v1.status, 308);
  assert.equal(v1.headers.location, 'https://example.com/v1?x=1&y=2');
  const v2 = await request(port, '/v2');
  assert.equal(v2.status, 308);
  assert.equal(v2.headers.location, '/two');
});

test('redir meta: 200 with an HTML refresh page, target escaped', async () => {
  const r = await request(port, '/meta');
  assert.equal(r.status, 200);
  assert.equal(r.headers.location, undefined);
  assert.match(r.body, /<script>window\.location\.replace\("\/target\?a=&lt;b&gt;"\);<\/script>/);
  assert.match(r.body, /<meta http-equiv="refresh" content="0; URL='\/target\?a=&lt;b&gt;'">/);
});

test('redir if / if_op: or, and, negated match', async () => {
  assert.equal((await request(port, '/cond')).status, 404);
  const byHeader = await request(port, '/cond', { headers: { 'X-Go': 'yes' } });
  assert.equal(byHeader.status, 302);
  assert.equal(byHeader.headers.location, '/conditional');
  assert.equal((await request(port, '/cond?q=abcdef')).status, 302);
  assert.equal((await request(port, '/cond?q=xabc')).status, 404);
  const bot = await request(port, '/bot', { headers: { 'User-Agent': 'Googlebot/2.1' } });
  assert.equal(bot.status, 301);
  assert.equal(bot.headers.location, '/robots.txt');
  assert.equal((await request(port, '/bot', { headers: { 'User-Agent': 'Firefox' } })).status, 404);
  const postBot = await request(port, '/bot', { method: 'POST', headers: { 'User-Agent': 'bot' } });
  assert.equal(postBot.status, 405, 'not_match excluded POST; the static server answers');
});
