// Every directive of "the rest" rejects bad arguments at load time, with file:line and the expected form.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/app.js';
import { runNodecaddy, tempDir } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
before(() => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'users.htpasswd'), 'alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n');
  writeFileSync(path.join(dir, 'sha512.htpasswd'), '# comment\n\nbob:$6$x$y\n');
  writeFileSync(path.join(dir, 'broken.htpasswd'), 'no colon here\n');
});
after(() => cleanup());

function load(body: string) {
  return loadConfig(
    { text: `:0 {\n\troot ${dir}\n${body}\n}\n`, name: 'Caddyfile' },
    { root: dir, host: '', port: '2015', cwd: dir, env: {} },
  );
}

/** [directive text (line 3 of the file), message pattern]. */
const BAD: [string, RegExp][] = [
  ['symlinks', /Caddyfile:3 - .*expected: symlinks follow\|inside\|owner/],
  ['symlinks outside', /Caddyfile:3 - .*expected: symlinks follow\|inside\|owner/],
  ['symlinks inside owner', /Caddyfile:3 - .*expected: symlinks follow\|inside\|owner/],
  ['header', /Caddyfile:3 - .*missing path; expected: header <path>/],
  ['header /', /Caddyfile:3 - .*missing header name/],
  ['header / A b c', /Caddyfile:3 - .*too many arguments/],
  ['header / {\n\t\tX a b\n\t}', /Caddyfile:4 - .*more than one value/],
  ['header / -', /Caddyfile:3 - .*header name missing after '-'/],
  ['redir', /Caddyfile:3 - .*missing destination; expected: redir/],
  ['redir /a /b 309', /Caddyfile:3 - .*Invalid redirect code '309'/],
  ['redir /a /a', /Caddyfile:3 - .*'from' and 'to' values of redirect rule cannot be the same/],
  ['redir /a /b\n\tredir /a /c', /Caddyfile:4 - .*rule with duplicate 'from' value: \/a -> \/b/],
  ['redir {\n\t\t/a /b\n\t\t/a /c\n\t}', /Caddyfile:5 - .*duplicate 'from'/],
  ['redir /a /b c d', /Caddyfile:3 - .*wrong number of arguments/],
  ['redir {\n\t\tif {path} like x\n\t\t/a /b\n\t}', /Caddyfile:4 - .*Invalid operator like/],
  ['redir {\n\t\tif {path} is\n\t\t/a /b\n\t}', /Caddyfile:4 - .*expected: if <a> <operator> <b>/],
  ['redir {\n\t\tif_op xor\n\t\t/a /b\n\t}', /Caddyfile:4 - .*expected: if_op and\|or/],
  ['redir {\n\t\tif {path} match (\n\t\t/a /b\n\t}', /Caddyfile:4 - .*Invalid regular expression/],
  ['rewrite /a', /Caddyfile:3 - .*missing 'to'/],
  ['rewrite not /a', /Caddyfile:3 - .*missing destination/],
  ['rewrite ( /x', /Caddyfile:3 - .*invalid regular expression '\('/],
  ['rewrite {\n\t\tto /x\n\t\tfoo bar\n\t}', /Caddyfile:5 - .*Unknown subdirective 'foo'/],
  ['rewrite {\n\t\text x\n\t\tto /x\n\t}', /Caddyfile:4 - .*invalid extension x/],
  ['rewrite {\n\t\tto\n\t}', /Caddyfile:4 - .*expected: to <destination>/],
  ['basicauth user', /Caddyfile:3 - .*wrong number of arguments; expected: basicauth/],
  ['basicauth user pass', /Caddyfile:3 - .*no protected path/],
  [
    'basicauth / u p {\n\t\trealm a\n\t\trealm b\n\t}',
    /Caddyfile:5 - .*"realm" subdirective can only be specified once/,
  ],
  ['basicauth u p {\n\t\tfoo bar\n\t}', /Caddyfile:4 - .*expecting "realm", got "foo"/],
  ['basicauth / carol htpasswd=users.htpasswd', /Caddyfile:3 - .*username "carol" not found/],
  ['basicauth / bob htpasswd=sha512.htpasswd', /Caddyfile:3 - .*line 3: unsupported hash scheme 6/],
  ['basicauth / a htpasswd=broken.htpasswd', /Caddyfile:3 - .*line 1: malformed line, no colon/],
  ['basicauth / a htpasswd=missing.htpasswd', /Caddyfile:3 - .*open ".*missing\.htpasswd"/],
  ['ext', /Caddyfile:3 - .*expected: ext <\.ext>/],
  ['ext html', /Caddyfile:3 - .*invalid extension 'html'/],
  ['status', /Caddyfile:3 - .*wrong number of arguments; expected: status <code> <path>/],
  ['status abc /x', /Caddyfile:3 - .*Expecting a numeric status code, got 'abc'/],
  ['status 404', /Caddyfile:3 - .*missing path/],
  ['status 404 /x\n\tstatus 403 /x', /Caddyfile:4 - .*Duplicate path: '\/x'/],
  ['status 101 /x', /Caddyfile:3 - .*out of range/],
  ['mime .txt', /Caddyfile:3 - .*missing content type for \.txt/],
  ['mime txt text/plain', /Caddyfile:3 - .*mime: invalid extension "txt" \(must start with dot\)/],
  ['mime {\n\t\t.a x/y\n\t\t.a x/z\n\t}', /Caddyfile:5 - .*mime: duplicate extension "\.a" found/],
  ['internal /a /b', /Caddyfile:3 - .*expected: internal <path>/],
  ['limits', /Caddyfile:3 - .*missing size/],
  ['limits 0', /Caddyfile:3 - .*invalid size '0'/],
  ['limits 10TB', /Caddyfile:3 - .*invalid size '10TB'/],
  ['limits {\n\t\tbody /x 1 2\n\t}', /Caddyfile:4 - .*expected: body \[<path>\] <size>/],
  ['limits {\n\t\tfoo 1\n\t}', /Caddyfile:4 - .*Unknown subdirective 'foo'/],
  ['timeouts', /Caddyfile:3 - .*missing duration/],
  ['timeouts 10', /Caddyfile:3 - .*invalid duration '10'/],
  ['timeouts -1s', /Caddyfile:3 - .*negative duration/],
  // One way to read durations and integers (core/setup-args.ts): the subdirective, the value, what is wrong.
  ['proxy / a:1 {\n\t\tfail_timeout -1s\n\t}', /Caddyfile:4 - .*fail_timeout: negative duration '-1s'/],
  ['proxy / a:1 {\n\t\ttry_interval soon\n\t}', /Caddyfile:4 - .*try_interval: invalid duration 'soon'/],
  ['proxy / a:1 {\n\t\tmax_conns 1.5\n\t}', /Caddyfile:4 - .*max_conns: '1.5' is not an integer/],
  [
    'fastcgi / 127.0.0.1:9000 {\n\t\tread_timeout -5s\n\t}',
    /Caddyfile:4 - .*read_timeout: negative duration/,
  ],
  ['proxy / a:1 {\n\t\twithout a b\n\t}', /Caddyfile:4 - .*Wrong argument count/],
  [
    'timeouts {\n\t\tslow 1s\n\t}',
    /Caddyfile:4 - .*unknown timeout 'slow': must be read, header, write, or idle/,
  ],
];

describe('bad arguments are load errors with file:line', () => {
  for (const [text, pattern] of BAD) {
    test(text.replace(/\s+/g, ' '), () => {
      assert.throws(() => load(`\t${text}`), pattern);
    });
  }
});

test('good forms load', () => {
  const config = load(`\theader /api X-A a
	header / {
		+Vary Accept
		-Server
	}
	redir 302 {
		/old /new
		/meta /m meta
		if {>X} is y
	}
	rewrite not ^/keep /other
	rewrite /app {
		r ^/(.*)$
		ext / .php !.js
		to /{1} /index.php?{query}
		if {method} is GET
		if_op or
	}
	basicauth / alice {SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=
	basicauth alice htpasswd=users.htpasswd {
		/private
		realm "Members only"
	}
	ext .html
	status 403 {
		/forbidden
		/denied
	}
	mime .foo text/x-foo
	internal /protected
	limits {
		header 8KB
		body /upload 1MB
		body 10KB
	}
	timeouts {
		read 30s
		header none
	}`);
  const site = config.sites[0].config;
  assert.equal(site.maxHeaderBytes, 8192);
  assert.deepEqual(site.timeouts, { read: 30_000, header: 0 });
});

test('-validate reports a directive error with file:line and exit 1', async () => {
  writeFileSync(path.join(dir, 'bad.caddy'), `:0 {\n\troot ${dir}\n\tredir /a /b 399\n}\n`);
  const r = await runNodecaddy(['-conf', 'bad.caddy', '-validate'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^bad\.caddy:3 - Error during parsing: Invalid redirect code '399'/m);
});
