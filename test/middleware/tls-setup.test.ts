// The `tls` directive and the HTTPS plan at load time: every form and subdirective, their errors with
// file:line, which sites become HTTPS, and the rules for sites that share a port.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_ACME_FLAGS } from '../../src/certs/acme/plan.js';
import { loadConfig, type Config } from '../../src/app.js';
import { signedBy, testCa } from '../helpers/certs.js';
import { tempDir } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
before(() => {
  ({ dir, cleanup } = tempDir());
  const ca = testCa(dir);
  signedBy(ca, dir, 'site', ['site.test', 'www.site.test']);
  signedBy(ca, dir, 'other', ['other.test']);
  mkdirSync(path.join(dir, 'bundles', 'deeper'), { recursive: true });
  const a = signedBy(ca, dir, 'bundle-a', ['a.bundle.test']);
  const b = signedBy(ca, dir, 'bundle-b', ['b.bundle.test']);
  writeFileSync(path.join(dir, 'bundles', 'a.pem'), `${a.cert.toString()}${a.key.toString()}`);
  writeFileSync(path.join(dir, 'bundles', 'deeper', 'b.PEM'), `${b.cert.toString()}${b.key.toString()}`);
  mkdirSync(path.join(dir, 'badbundle'));
  writeFileSync(
    path.join(dir, 'badbundle', 'x.pem'),
    `${a.cert.toString()}-----BEGIN FOO-----\nAA==\n-----END FOO-----\n`,
  );
});
after(() => cleanup());

function load(text: string, options: { warnings?: string[]; agree?: boolean } = {}): Config {
  const config = loadConfig(
    { text, name: 'Caddyfile' },
    {
      root: dir,
      host: '',
      port: '2015',
      cwd: dir,
      env: {},
      httpPort: '80',
      httpsPort: '443',
      dataDir: dir,
      acme: { ...DEFAULT_ACME_FLAGS, agree: options.agree ?? false },
    },
  );
  options.warnings?.push(...config.warnings);
  return config;
}

function loadError(text: string, agree = false): string {
  try {
    load(text, { agree });
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

const site = (body: string, address = 'https://site.test:8443') => `${address} {\n\t${body}\n}\n`;

describe('tls directive: errors name the file and line', () => {
  const BAD: [string, RegExp][] = [
    ['tls', /Caddyfile:2 - .*Wrong argument count/],
    ['tls a b c', /Caddyfile:2 - .*too many arguments/],
    ['tls nonsense', /Caddyfile:2 - .*expected an email address, off, self_signed, internal or <cert> <key>/],
    [
      'tls missing.pem missing.key',
      /Caddyfile:2 - .*Unable to load certificate and key files for 'site\.test'/,
    ],
    ['tls site.pem other.key', /Caddyfile:2 - .*does not belong to the certificate/],
    ['tls off {\n\t\tprotocols tls1.2\n\t}', /Caddyfile:3 - .*'tls off' takes no block/],
    ['tls {\n\t\tbogus\n\t}', /Caddyfile:3 - .*Unknown subdirective 'bogus'/],
    [
      'tls internal {\n\t\tprotocols tls1.9\n\t}',
      /Caddyfile:3 - .*Wrong protocol name or protocol not supported: 'tls1.9'/,
    ],
    ['tls internal {\n\t\tprotocols tls1.3 tls1.2\n\t}', /Caddyfile:3 - .*cannot be higher than maximum/],
    [
      'tls internal {\n\t\tciphers RC4-MD5\n\t}',
      /Caddyfile:3 - .*Wrong cipher name or cipher not supported: 'RC4-MD5'/,
    ],
    [
      'tls internal {\n\t\tcurves P999\n\t}',
      /Caddyfile:3 - .*Wrong curve name or curve not supported: 'P999'/,
    ],
    [
      'tls internal {\n\t\tkey_type DSA\n\t}',
      /Caddyfile:3 - .*Wrong key type name or key type not supported: 'DSA'/,
    ],
    ['tls internal {\n\t\tclients\n\t}', /Caddyfile:3 - .*Wrong argument count/],
    ['tls internal {\n\t\tclients verify_if_given\n\t}', /Caddyfile:3 - .*at least one CA certificate file/],
    ['tls internal {\n\t\tclients nothere.pem\n\t}', /Caddyfile:3 - .*clients: .*nothere\.pem/],
    ['tls internal {\n\t\tload nowhere\n\t}', /Caddyfile:3 - .*load: /],
    ['tls internal {\n\t\tload badbundle\n\t}', /Caddyfile:3 - .*unrecognized PEM block type: FOO/],
    ['tls internal {\n\t\tmax_certs zero\n\t}', /Caddyfile:3 - .*max_certs: 'zero' is not an integer/],
    ['tls internal {\n\t\task ftp://x\n\t}', /Caddyfile:3 - .*ask URL must use http or https/],
    ['tls internal {\n\t\tdns route53\n\t}', /Caddyfile:3 - .*Unknown DNS provider by name 'route53'/],
    ['tls internal {\n\t\tdns exec\n\t}', /Caddyfile:3 - .*dns exec: the command to run is missing/],
    ['tls internal {\n\t\talpn spdy/3\n\t}', /Caddyfile:3 - .*alpn: nodecaddy speaks h2 and http\/1.1/],
    ['tls internal {\n\t\tca not-a-url\n\t}', /Caddyfile:3 - .*ca must be an ACME directory URL/],
    ['tls internal site.pem', /Caddyfile:2 - .*too many arguments|Caddyfile:2 - /],
  ];
  for (const [body, pattern] of BAD)
    test(body.replace(/\s+/g, ' '), () => assert.match(loadError(site(body)), pattern));

  test('wildcard needs a name that can have one', () => {
    assert.match(
      loadError(site('tls internal {\n\t\twildcard\n\t}', 'https://localhost:8443')),
      /does not qualify/,
    );
    assert.match(
      loadError(site('tls internal {\n\t\twildcard\n\t}', 'https://*.site.test')),
      /already has a wildcard/,
    );
    assert.match(loadError(site('tls internal {\n\t\twildcard\n\t}', 'https://site.test')), /too few labels/);
    assert.equal(loadError(site('tls internal {\n\t\twildcard\n\t}', 'https://a.site.test')), '');
  });
});

describe('which sites are HTTPS', () => {
  const scheme = (text: string) =>
    load(text).sites.map((s) => `${s.label} ${s.config.certSource?.kind ?? 'plain'}`);

  test('https://, the HTTPS port and a tls certificate mean HTTPS; internal names get the local CA', () => {
    assert.deepEqual(scheme(site('tls site.pem site.key')), ['https://site.test:8443 files']);
    assert.deepEqual(scheme('https://localhost {\n}\n'), ['https://localhost:443 internal']);
    assert.deepEqual(scheme('app.localhost:443 {\n}\n'), ['https://app.localhost:443 internal']);
    assert.deepEqual(scheme('https://127.0.0.1:9443 {\n}\n'), ['https://127.0.0.1:9443 internal']);
    // Caddy v1: a certificate from `tls` makes a site without a scheme HTTPS on its own port (-port).
    assert.deepEqual(scheme('site.test {\n\ttls site.pem site.key\n}\n'), ['https://site.test:2015 files']);
    assert.deepEqual(scheme('localhost:9000 {\n\ttls self_signed\n}\n'), [
      'https://localhost:9000 self_signed',
    ]);
    assert.deepEqual(scheme('localhost:9000 {\n}\n'), ['http://localhost:9000 plain']);
  });

  test('tls off, and a certificate on an http:// address (a warning: TLS disabled)', () => {
    assert.deepEqual(scheme('https://localhost:9443 {\n\ttls off\n}\n'), ['http://localhost:9443 plain']);
    const warnings: string[] = [];
    load('http://site.test:8080 {\n\ttls site.pem site.key\n}\n', { warnings });
    assert.match(
      warnings.join('\n'),
      /^http:\/\/site\.test:8080: TLS disabled: the address says plain HTTP \(Caddyfile:2\)$/m,
    );
  });

  test('a public name without a certificate gets one from the ACME CA (Caddy v1), once -agree is given', () => {
    assert.match(loadError('https://example.com {\n}\n'), /Caddyfile:1 - .*run with -agree/);
    assert.match(loadError('example.com {\n\ttls me@example.com\n}\n'), /Caddyfile:2 - .*-agree/);
    const auto = (text: string) =>
      load(text, { agree: true }).sites.map((s) => `${s.label} ${s.config.certSource?.kind ?? 'plain'}`);
    // No port: a public name moves to the HTTPS port (and gets the redirect listener on the HTTP port).
    assert.deepEqual(auto('example.com {\n}\n'), ['https://example.com:443 acme']);
    const config = load('example.com {\n}\n', { agree: true });
    assert.deepEqual([...config.listeners.keys()].sort(), [':443', ':80']);
    assert.deepEqual(auto('example.com:8443 {\n\ttls me@example.com\n}\n'), [
      'https://example.com:8443 acme',
    ]);
    // What does not qualify keeps the default port, as before: tls off, internal names, a certificate of its own.
    assert.deepEqual(auto('example.com {\n\ttls off\n}\n'), ['http://example.com:2015 plain']);
    assert.deepEqual(auto('localhost {\n}\n'), ['http://localhost:2015 plain']);
    assert.deepEqual(auto('app {\n}\n'), ['http://app:2015 plain']);
    // On demand: the names come at handshakes, so a catch-all site qualifies with `ask`.
    assert.deepEqual(auto(':443 {\n\ttls {\n\t\task http://127.0.0.1:9/ok\n\t}\n}\n'), ['https://:443 acme']);
  });

  test('must_staple is read and ignored, with a warning (no CA takes such orders any more)', () => {
    const warnings: string[] = [];
    load('example.com {\n\ttls {\n\t\tmust_staple\n\t}\n}\n', { warnings, agree: true });
    assert.match(warnings.join('\n'), /Caddyfile:3: must_staple is ignored/);
  });

  test('automatic HTTPS refuses what could never get a certificate, or could get one for anyone', () => {
    assert.match(loadError('*.example.com {\n}\n', true), /Caddyfile:1 - .*needs the DNS-01 challenge/);
    assert.equal(loadError('*.example.com {\n\ttls {\n\t\tdns exec ./hook\n\t}\n}\n', true), '');
    assert.match(
      loadError(':443 {\n\ttls {\n\t\tmax_certs 10\n\t}\n}\n', true),
      /Caddyfile:2 - .*max_certs.*needs `ask <url>`/,
    );
    assert.match(
      loadError('a.example.com {\n\ttls {\n\t\twildcard\n\t}\n}\n', true),
      /wildcard certificate needs `dns exec/,
    );
  });

  test('load <dir>: every bundle below, serving the names it carries', () => {
    const config = load(site('tls {\n\t\tload bundles\n\t}'));
    const source = config.sites[0].config.certSource;
    assert.equal(source?.kind, 'files');
    const names = source?.kind === 'files' ? source.pairs.flatMap((p) => p.names).sort() : [];
    assert.deepEqual(names, ['a.bundle.test', 'b.bundle.test']);
  });

  test('certificate and key files are watched, reload the config when they change, and are never served', () => {
    const config = load(site('tls site.pem site.key\n\troot .'));
    assert.ok(config.files.includes(path.join(dir, 'site.pem')));
    assert.ok(config.files.includes(path.join(dir, 'site.key')));
    assert.ok(config.sites[0].config.hiddenFiles.includes(path.join(dir, 'site.key')));
  });
});

describe('-http2', () => {
  test('-http2=false offers only http/1.1 by ALPN, unless a site says alpn itself', () => {
    const load = (text: string, http2: boolean) =>
      loadConfig(
        { text, name: 'Caddyfile' },
        { root: dir, host: '', port: '2015', cwd: dir, env: {}, dataDir: dir, http2 },
      );
    const text = 'https://site.test:8443 {\n\ttls site.pem site.key\n}\n';
    assert.deepEqual(load(text, true).listeners.get(':8443')!.tls!.alpn, ['h2', 'http/1.1']);
    assert.deepEqual(load(text, false).listeners.get(':8443')!.tls!.alpn, ['http/1.1']);
    const explicit = 'https://site.test:8443 {\n\ttls site.pem site.key {\n\t\talpn h2\n\t}\n}\n';
    assert.deepEqual(load(explicit, false).listeners.get(':8443')!.tls!.alpn, ['h2']);
  });
});

describe('sites that share a port', () => {
  test('all HTTPS or all plain', () => {
    assert.match(
      loadError('https://site.test:8443 {\n\ttls site.pem site.key\n}\nhttp://plain.test:8443 {\n}\n'),
      /share port 8443, but one is HTTPS and the other plain HTTP/,
    );
  });

  test('agree on the TLS policy (Caddy v1): protocols, ciphers, curves, alpn, clients', () => {
    const a = 'https://site.test:8443 {\n\ttls site.pem site.key {\n\t\tprotocols tls1.3\n\t}\n}\n';
    const b = 'https://other.test:8443 {\n\ttls other.pem other.key\n}\n';
    assert.match(
      loadError(a + b),
      /Caddyfile:\d+ - .*incompatible TLS configurations on port 8443: .* differ in protocols/,
    );
    assert.equal(loadError(b + b.replace('other.test', 'www.other.test')), '');
  });

  test('a redirect site per HTTPS host on the HTTP port, none where the Caddyfile has its own', () => {
    const config = load(
      'https://site.test {\n\ttls site.pem site.key\n}\nhttps://other.test {\n\ttls other.pem other.key\n}\n' +
        'http://other.test {\n}\n',
    );
    const http = config.listeners.get(':80')!;
    assert.deepEqual(http.sites.map((s) => `${s.label}${s.implicit ? ' (redirect)' : ''}`).sort(), [
      'http://other.test:80',
      'http://site.test:80 (redirect)',
    ]);
    assert.equal(http.optional, false, 'the Caddyfile asked for port 80 itself');
    const only = load(site('tls site.pem site.key', 'https://site.test')).listeners.get(':80')!;
    assert.equal(only.optional, true, 'a port only redirects use: binding it may fail with a warning');
  });
});
