// tunnel directive setup: what it accepts, and the errors (with file:line) for what it does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/app.js';
import { runNodecaddy } from '../helpers/process.js';

function load(text: string) {
  return loadConfig(
    { text, name: 'Caddyfile' },
    { root: '.', host: '', port: '2015', cwd: process.cwd(), env: {} },
  );
}

test('tunnel accepts its options', () => {
  const config = load(
    '*.t.example.com:8080 {\n tunnel {\n  secret abcdefgh1\n  secret second-secret\n  max_sessions 3\n  max_streams 50\n  timeout 0\n  idle_timeout 10m\n  handshake_timeout 5s\n  ping_interval 20s\n }\n}\n',
  );
  assert.equal(config.sites.length, 1);
  assert.equal(config.instances.length, 1);
});

test('tunnel setup errors name the file and line and the expected form', () => {
  const cases: [string, RegExp][] = [
    ['*.t.example.com {\n tunnel\n}\n', /Caddyfile:2 - .*tunnel needs a secret/],
    ['*.t.example.com {\n tunnel {\n  secret short\n }\n}\n', /Caddyfile:3 - .*at least 8 characters/],
    [
      '*.t.example.com {\n tunnel {\n  secret abcdefgh1\n  timeout soon\n }\n}\n',
      /Caddyfile:4 - .*invalid duration 'soon'/,
    ],
    [
      '*.t.example.com {\n tunnel {\n  secret abcdefgh1\n  max_streams -1\n }\n}\n',
      /Caddyfile:4 - .*max_streams must be at least 1, not -1/,
    ],
    [
      '*.t.example.com {\n tunnel {\n  secrett abcdefgh1\n }\n}\n',
      /Caddyfile:3 - .*Unknown subdirective 'secrett'.*did you mean 'secret'/,
    ],
    [
      '*.t.example.com {\n tunnel extra {\n  secret abcdefgh1\n }\n}\n',
      /Caddyfile:2 - .*Wrong argument count/,
    ],
  ];
  for (const [text, message] of cases) assert.throws(() => load(text), message, text);
});

test('nodecaddy tunnel -h documents the flags; bad flags are usage errors', async () => {
  const help = await runNodecaddy(['tunnel', '-h']);
  assert.equal(help.code, 0);
  for (const flag of ['-server', '-secret', '-name', '-to', '-host-header', '-dial', '-ping', '-max-backoff'])
    assert.ok(help.stdout.includes(`  ${flag} `), flag);
  const bad = await runNodecaddy(['tunnel', '-server', 'x', '-name', 'a', '-to', '1', '-secret', 's']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /-server must be a URL/);
  const badName = await runNodecaddy([
    'tunnel',
    '-server',
    'http://t.example',
    '-name',
    'A.B',
    '-to',
    '1',
    '-secret',
    's',
  ]);
  assert.match(badName.stderr, /-name must be one DNS label/);
  // <name>.127.0.0.1 is no host name: a clear usage error, not a TypeError from the URL parser.
  for (const server of ['http://127.0.0.1:8080', 'https://[::1]']) {
    const ip = await runNodecaddy([
      'tunnel',
      '-server',
      server,
      '-name',
      'a',
      '-to',
      '1',
      '-secret',
      'abcdefgh1',
    ]);
    assert.equal(ip.code, 2, server);
    assert.match(ip.stderr, /-server must name the server by its domain.* and -dial \S+:\d+ /, server);
  }
});

test('a secret from an unset environment variable names the variable', () => {
  assert.throws(
    () => load('*.t.example.com {\n tunnel {\n  secret {$TUNNEL_SECRET}\n }\n}\n'),
    /Caddyfile:3 - .*tunnel secret is empty: the environment variable \$TUNNEL_SECRET is not set/,
  );
  assert.throws(
    () =>
      loadConfig(
        { text: '*.t.example.com {\n tunnel {\n  secret {$SHORT}\n }\n}\n', name: 'Caddyfile' },
        { root: '.', host: '', port: '2015', cwd: process.cwd(), env: { SHORT: 'abc' } },
      ),
    /Caddyfile:3 - .*tunnel secret from \$SHORT must be at least 8 characters \(it has 3\)/,
  );
});

test('nodecaddy tunnel -h shows no example secret shorter than the server accepts', async () => {
  const help = await runNodecaddy(['tunnel', '-h']);
  const examples = help.stdout.split('\n').filter((l) => l.trim().startsWith('nodecaddy tunnel '));
  assert.ok(examples.length > 0);
  for (const m of examples.join('\n').matchAll(/-secret (\S+)/g)) {
    assert.ok(m[1].startsWith('"$') || m[1].length >= 8, `example secret ${m[1]}`);
  }
});

test('tcp_ports: a range or one port; anything else is an error with file:line', () => {
  assert.equal(
    load('http://*.t.example.com {\n tunnel {\n  secret abcdefgh1\n  tcp_ports 20000-20100\n }\n}\n').sites
      .length,
    1,
  );
  load('http://*.t.example.com {\n tunnel {\n  secret abcdefgh1\n  tcp_ports 2222\n }\n}\n');
  for (const bad of ['20100-20000', '0-10', '70000', 'many', '1-2-3']) {
    assert.throws(
      () => load(`http://*.t.example.com {\n tunnel {\n  secret abcdefgh1\n  tcp_ports ${bad}\n }\n}\n`),
      new RegExp(`Caddyfile:4 - .*tcp_ports: '${bad}' is not a port range like 20000-20100`),
      bad,
    );
  }
});
