import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { RequestContext } from '../../src/core/context.js';
import { HookedResponse } from '../../src/core/response.js';
import type { Site } from '../../src/core/site.js';
import { compileTemplate, replacePlaceholders } from '../../src/core/replacer.js';
import {
  formatCommonLogTime,
  formatIsoLocal,
  formatIsoUtc,
  queryArg,
  queryEscape,
} from '../../src/core/replacer-format.js';
import { goDistinguishedName } from '../../src/core/replacer-tls.js';
import { roundLatencyNanos } from '../../src/core/replacer-values.js';

// Self-signed EC certificates, valid 2000-2100 (made with openssl for these tests only).
const SERVER_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJI9IdVBB/O861Xwi
SbJ64oiWqyAkLGyLGT3zlTHr6V+hRANCAAQ9Hk3aPokDsZwOTTDqHORenQIJeXlZ
aUddp3Fr9qfgv4h2MuYjedsY/xJn0yC6BI9wvyzcnR/HZ9Xh0LQJgLnS
-----END PRIVATE KEY-----
`;
const SERVER_CERT = `-----BEGIN CERTIFICATE-----
MIIBVTCB/KADAgECAgEBMAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCWxvY2FsaG9z
dDAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowFDESMBAGA1UEAwwJ
bG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPR5N2j6JA7GcDk0w
6hzkXp0CCXl5WWlHXadxa/an4L+IdjLmI3nbGP8SZ9MgugSPcL8s3J0fx2fV4dC0
CYC50qM9MDswGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMB0GA1UdDgQWBBSx
jv3wk3UjhgDHE1rDhiVMOl+q4zAKBggqhkjOPQQDAgNIADBFAiBEuEHOL2r5jKWe
Q0nSJS2OzY1gBepa+pes7J5G2ZCqFQIhAON9EsdAFDTlgBWgPIsKDQIowjOU9MYk
Tj7/7jgsDXlI
-----END CERTIFICATE-----
`;
// Subject: C=US, ST=Utah, O=Acme\, Inc., OU=Dev\+Ops, serialNumber=42 + CN=client one; serial 0xAB12CD34.
const CLIENT_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgv9kNGl8n9FJuZUo6
zi25er5LCyeEf6odZH7fHz2/jY6hRANCAAQe1/r1oQlqn5JRrxTaJkiNojTSyTb1
0eKNXoJtKiWAG8merEPHPTFIZLFmt4K13a/344s2siKazsB7is7ieHdR
-----END PRIVATE KEY-----
`;
const CLIENT_CERT = `-----BEGIN CERTIFICATE-----
MIIBtDCCAVoCBQCrEs00MAoGCCqGSM49BAMCMGMxCzAJBgNVBAYTAlVTMQ0wCwYD
VQQIDARVdGFoMRMwEQYDVQQKDApBY21lLCBJbmMuMRAwDgYDVQQLDAdEZXYrT3Bz
MR4wCQYDVQQFEwI0MjARBgNVBAMMCmNsaWVudCBvbmUwIBcNMDAwMTAyMDMwNDA1
WhgPMjEwMDAxMDEwMDAwMDBaMGMxCzAJBgNVBAYTAlVTMQ0wCwYDVQQIDARVdGFo
MRMwEQYDVQQKDApBY21lLCBJbmMuMRAwDgYDVQQLDAdEZXYrT3BzMR4wCQYDVQQF
EwI0MjARBgNVBAMMCmNsaWVudCBvbmUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAQe1/r1oQlqn5JRrxTaJkiNojTSyTb10eKNXoJtKiWAG8merEPHPTFIZLFmt4K1
3a/344s2siKazsB7is7ieHdRMAoGCCqGSM49BAMCA0gAMEUCIQD1v2rHlIVRszo0
l0r0RIP4vMN8Vq1Wzb4PxpYPcR8j2AIgR2Xp8oDMg22N4wshP8XIm4N2GbdvmjbP
UXaa364BY58=
-----END CERTIFICATE-----
`;

function makeSite(path: string): Site {
  return {
    config: {
      address: { original: `localhost${path}`, scheme: 'http', host: 'localhost', port: '0', path },
      root: '/nonexistent',
      indexFiles: ['index.html'],
      bindHost: undefined,
      hiddenFiles: [],
      sourceFile: 'Caddyfile',
    },
    handler: async () => {},
    label: `http://localhost${path}`,
  };
}

interface ServeOptions {
  /** Site path prefix ('' by default). */
  sitePath?: string;
  /** How long ago the request "arrived", in ms (for {latency}). */
  ageMs?: number;
  /** Serve over TLS; the client options are merged into tls.connect's. */
  tls?: tls.ConnectionOptions;
  /** Address the server listens on (127.0.0.1 by default); the client always connects to 127.0.0.1. */
  listenHost?: string;
}

interface Served<T> {
  value: T;
  /** The client's local port ({port} on the server side). */
  clientPort: number;
  /** The TLS cipher the client negotiated, if TLS. */
  clientCipher: string | undefined;
  /** What the server sent back. */
  response: string;
}

/**
 * Sends `raw` (a complete HTTP request) over a real connection to a real server, builds a RequestContext in the
 * handler and runs `fn` on it there; what `fn` returns (or throws) comes back once the response is complete.
 */
async function serve<T>(
  raw: string,
  fn: (ctx: RequestContext) => T,
  opts: ServeOptions = {},
): Promise<Served<T>> {
  const site = makeSite(opts.sitePath ?? '');
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.setHeader('Connection', 'close');
    try {
      const ctx = new RequestContext(req, res, site, performance.now() - (opts.ageMs ?? 0));
      outcome = { ok: true, value: fn(ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    res.end('done');
  };
  const server = opts.tls
    ? https.createServer(
        {
          key: SERVER_KEY,
          cert: SERVER_CERT,
          requestCert: true,
          rejectUnauthorized: false,
          ServerResponse: HookedResponse,
        },
        handler,
      )
    : http.createServer({ ServerResponse: HookedResponse }, handler);
  server.listen(0, opts.listenHost ?? '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as net.AddressInfo).port;
    const socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts.tls })
      : net.connect(port, '127.0.0.1');
    await once(socket, opts.tls ? 'secureConnect' : 'connect');
    const clientPort = socket.localPort!;
    const clientCipher = opts.tls ? (socket as tls.TLSSocket).getCipher().name : undefined;
    let response = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (response += chunk));
    socket.write(raw);
    await once(socket, 'close');
    if (!outcome) throw new Error(`the handler did not run; response: ${JSON.stringify(response)}`);
    if (!outcome.ok) throw outcome.error;
    return { value: outcome.value, clientPort, clientCipher, response };
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

/** Renders each template (with emptyValue '-' unless told) and returns the results keyed by template. */
function renderAll(
  ctx: RequestContext,
  templates: readonly string[],
  emptyValue = '-',
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of templates) out[t] = compileTemplate(t, { emptyValue }).render(ctx);
  return out;
}

const REQUEST_LINE = 'GET /a%20b/c.txt?x=1&y=h%C3%A9llo&y=2&sp=a+b&semi=1;2&e%3Dk=v HTTP/1.1\r\n';
const BASIC_REQUEST =
  REQUEST_LINE +
  'Host: www.Example.com:8080\r\n' +
  'X-Custom: one\r\n' +
  'User-Agent: test-agent\r\n' +
  'x-custom: two\r\n' +
  'Cookie: foo=bar; taste="delicious"\r\n' +
  'Cookie: third=3; bad="x\\y"\r\n' +
  '\r\n';

test('request placeholders', async () => {
  const templates = [
    '{method}',
    '{scheme}',
    '{host}',
    '{hostonly}',
    '{hostname}',
    '{label1}|{label2}|{label3}|{label4}|{label0}|{label-1}|{labelx}|{label}|{label+2}',
    '{path}',
    '{path_escaped}',
    '{rewrite_path}',
    '{rewrite_path_escaped}',
    '{query}',
    '{query_escaped}',
    '{uri}',
    '{uri_escaped}',
    '{rewrite_uri}',
    '{rewrite_uri_escaped}',
    '{fragment}',
    '{dir}|{file}',
    '{proto}',
    '{remote}',
    '{port}',
    '{server_port}',
    '{>X-Custom}|{>x-CUSTOM}|{>user-agent}|{>Missing}|{>}',
    '{~foo}|{~taste}|{~third}|{~bad}|{~nope}|{~}',
    '{?x}|{?y}|{?sp}|{?missing}|{?semi}|{?e=k}|{?}',
    '{status}|{size}',
    '{request}',
    '{request_body}|{request_id}|{user}|{upstream}',
    '{mitm}',
    '{tls_protocol}|{tls_cipher}',
    '{tls_client_escaped_cert}|{tls_client_fingerprint}|{tls_client_i_dn}|{tls_client_raw_cert}',
    '{tls_client_s_dn}|{tls_client_serial}|{tls_client_v_end}|{tls_client_v_remain}|{tls_client_v_start}',
    '{<Content-Type}',
    '{nosuch}|{}',
  ];
  const { value: got, clientPort } = await serve(BASIC_REQUEST, (ctx) => renderAll(ctx, templates));
  const rawQuery = 'x=1&y=h%C3%A9llo&y=2&sp=a+b&semi=1;2&e%3Dk=v';
  const want: Record<string, string> = {
    '{method}': 'GET',
    '{scheme}': 'http',
    '{host}': 'www.Example.com:8080',
    '{hostonly}': 'www.Example.com',
    '{hostname}': os.hostname(),
    '{label1}|{label2}|{label3}|{label4}|{label0}|{label-1}|{labelx}|{label}|{label+2}':
      'www|Example|com:8080|-|-|-|-|-|Example',
    '{path}': '/a b/c.txt',
    '{path_escaped}': '%2Fa+b%2Fc.txt',
    '{rewrite_path}': '/a b/c.txt',
    '{rewrite_path_escaped}': '%2Fa+b%2Fc.txt',
    '{query}': rawQuery,
    '{query_escaped}': 'x%3D1%26y%3Dh%25C3%25A9llo%26y%3D2%26sp%3Da%2Bb%26semi%3D1%3B2%26e%253Dk%3Dv',
    '{uri}': `/a%20b/c.txt?${rawQuery}`,
    '{uri_escaped}': `%2Fa%2520b%2Fc.txt%3F${'x%3D1%26y%3Dh%25C3%25A9llo%26y%3D2%26sp%3Da%2Bb%26semi%3D1%3B2%26e%253Dk%3Dv'}`,
    '{rewrite_uri}': `/a%20b/c.txt?${rawQuery}`,
    '{rewrite_uri_escaped}': `%2Fa%2520b%2Fc.txt%3F${'x%3D1%26y%3Dh%25C3%25A9llo%26y%3D2%26sp%3Da%2Bb%26semi%3D1%3B2%26e%253Dk%3Dv'}`,
    '{fragment}': '-',
    '{dir}|{file}': '/a b/|c.txt',
    '{proto}': 'HTTP/1.1',
    '{remote}': '127.0.0.1',
    '{port}': String(clientPort),
    '{server_port}': '8080',
    '{>X-Custom}|{>x-CUSTOM}|{>user-agent}|{>Missing}|{>}': 'one,two|one,two|test-agent|-|-',
    '{~foo}|{~taste}|{~third}|{~bad}|{~nope}|{~}': 'bar|delicious|3|-|-|-',
    // {?arg} is '' when missing, even in log; `;` makes Go drop the pair; keys are decoded.
    '{?x}|{?y}|{?sp}|{?missing}|{?semi}|{?e=k}|{?}': '1|héllo|a b|||v|',
    '{status}|{size}': '200|0',
    '{request}':
      `${REQUEST_LINE.slice(0, -2)}\\r\\nHost: www.Example.com:8080\\r\\n` +
      'Cookie: foo=bar; taste="delicious"\\r\\nCookie: third=3; bad="x\\y"\\r\\n' +
      'User-Agent: test-agent\\r\\nX-Custom: one\\r\\nX-Custom: two\\r\\n\\r\\n',
    '{request_body}|{request_id}|{user}|{upstream}': '-|-|-|-',
    '{mitm}': 'unknown',
    '{tls_protocol}|{tls_cipher}': '-|-',
    '{tls_client_escaped_cert}|{tls_client_fingerprint}|{tls_client_i_dn}|{tls_client_raw_cert}': '-|-|-|-',
    '{tls_client_s_dn}|{tls_client_serial}|{tls_client_v_end}|{tls_client_v_remain}|{tls_client_v_start}':
      '-|-|-|-|-',
    '{<Content-Type}': '-',
    '{nosuch}|{}': '-|-',
  };
  assert.deepEqual(got, want);
});

test('empty value defaults to the empty string', async () => {
  const { value } = await serve(BASIC_REQUEST, (ctx) =>
    renderAll(ctx, ['[{>Missing}]', '[{nosuch}]', '[{user}]', '[{fragment}]', '[{~nope}]', '[{label9}]'], ''),
  );
  for (const [t, v] of Object.entries(value)) assert.equal(v, '[]', t);
});

test('{path} keeps the site prefix; rewrite_* follow the current URI', async () => {
  const { value } = await serve(
    'GET /blog/posts/x.html?p=1 HTTP/1.1\r\nHost: localhost\r\n\r\n',
    (ctx) => {
      const t = compileTemplate('{path}|{rewrite_path}|{uri}|{rewrite_uri}|{dir}|{file}|{query}|{?p}|{?q}');
      const before = t.render(ctx);
      ctx.setUri('/new/path%20z?q=2&q=3');
      const after = t.render(ctx);
      const escaped = compileTemplate('{rewrite_path_escaped}|{rewrite_uri_escaped}|{path_escaped}').render(
        ctx,
      );
      return { before, after, escaped };
    },
    { sitePath: '/blog' },
  );
  assert.equal(
    value.before,
    '/blog/posts/x.html|/posts/x.html|/blog/posts/x.html?p=1|/posts/x.html?p=1|/posts/|x.html|p=1|1|',
  );
  assert.equal(
    value.after,
    '/blog/posts/x.html|/new/path z|/blog/posts/x.html?p=1|/new/path%20z?q=2&q=3|/new/|path z|p=1||2',
  );
  assert.equal(value.escaped, '%2Fnew%2Fpath+z|%2Fnew%2Fpath%2520z%3Fq%3D2%26q%3D3|%2Fblog%2Fposts%2Fx.html');
});

test('custom values (ctx.vars) win over built-ins; {user} comes from ctx.user', async () => {
  const { value } = await serve(BASIC_REQUEST, (ctx) => {
    const log = compileTemplate(
      '{user} {upstream} {request_id} {1}/{2} {method} {host} [{blank}] {?x} {>X-Custom}',
      {
        emptyValue: '-',
      },
    );
    const before = log.render(ctx);
    ctx.user = 'alice';
    ctx.vars.set('upstream', 'http://10.0.0.1:9000');
    ctx.vars.set('request_id', 'req-42');
    ctx.vars.set('1', '12');
    ctx.vars.set('2', '');
    ctx.vars.set('method', 'OVERRIDE');
    ctx.vars.set('blank', '');
    ctx.vars.set('?x', 'from-var');
    ctx.vars.set('>X-Custom', 'var-header');
    const after = log.render(ctx);
    // Caddy's own case: "/a{1}/{2}" with 1=12 and 2="" gives "/a12/".
    const rewrite = compileTemplate('/a{1}/{2}').render(ctx);
    ctx.vars.set('user', 'bob');
    const userVar = compileTemplate('{user}').render(ctx);
    return { before, after, rewrite, userVar };
  });
  assert.equal(value.before, '- - - -/- GET www.Example.com:8080 [-] 1 one,two');
  assert.equal(
    value.after,
    'alice http://10.0.0.1:9000 req-42 12/- OVERRIDE www.Example.com:8080 [-] from-var var-header',
  );
  assert.equal(value.rewrite, '/a12/');
  assert.equal(value.userVar, 'bob');
});

test('syntax: escapes, unpaired braces and the nested-brace quirk', async () => {
  const request = 'GET /x HTTP/1.1\r\nHost: localhost\r\nCustom: foobarbaz\r\nShorterVal: 1\r\n\r\n';
  const { value } = await serve(request, (ctx) => {
    ctx.vars.set('ho}st', 'VAR');
    ctx.vars.set('a{b', 'VAR2');
    const cases: Array<[string, string]> = [
      ['This host is {host}.', 'This host is localhost.'],
      ['The cUsToM header is {>cUsToM}...', 'The cUsToM header is foobarbaz...'],
      ['Bad {host placeholder...', 'Bad {host placeholder...'],
      ['Bad {>Custom placeholder', 'Bad {>Custom placeholder'],
      // QUIRK: the placeholder runs to the first `}`, naming the header "Custom placeholder {>ShorterVal"
      // (no such header: ShorterVal is not looked up).
      ['Bad {>Custom placeholder {>ShorterVal}', 'Bad -'],
      ['Bad {}', 'Bad -'],
      ['\\{host\\}', '{host}'],
      ['\\{{host}\\}', '{localhost}'],
      ['{host}\\{host}', 'localhost{host}'],
      ['a\\b\\\\{c}', 'a\\b\\{c}'],
      ['{ho\\}st}', 'VAR'],
      ['{a\\{b}', 'VAR2'],
      ['{a{b}', 'VAR2'],
      ['a}b', 'a}b'],
      ['a\\}b', 'a}b'],
      ['{method} {x', 'GET {x'],
      ['{method} \\{x} {', 'GET {x} {'],
      ['{{method}}', '-}'],
      ['{method}{method}{method}', 'GETGETGET'],
      ['{method', '{method'],
      ['C:\\dir\\file', 'C:\\dir\\file'],
      ['', ''],
    ];
    return cases.map(([template, want]) => ({
      template,
      want,
      got: compileTemplate(template, { emptyValue: '-' }).render(ctx),
    }));
  });
  for (const c of value) assert.equal(c.got, c.want, c.template);
});

test('compiled templates: static fast path, source and placeholder names', async () => {
  const plain = compileTemplate('no placeholders \\ here');
  assert.equal(plain.isStatic, true);
  assert.equal(plain.source, 'no placeholders \\ here');
  const escaped = compileTemplate('only \\{escaped\\} braces', { emptyValue: '-' });
  assert.equal(escaped.isStatic, true);
  const unpaired = compileTemplate('{unpaired');
  assert.equal(unpaired.isStatic, true);
  const dynamic = compileTemplate('{remote} - {user} [{when}] "{method} {uri} {proto}" {status} {size}');
  assert.equal(dynamic.isStatic, false);
  assert.deepEqual(dynamic.placeholders, [
    'remote',
    'user',
    'when',
    'method',
    'uri',
    'proto',
    'status',
    'size',
  ]);

  const { value } = await serve('GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n', (ctx) => ({
    plain: plain.render(ctx),
    escaped: escaped.render(ctx),
    unpaired: unpaired.render(ctx),
    oneOff: replacePlaceholders(ctx, '{method} {uri}'),
    oneOffAgain: replacePlaceholders(ctx, '{method} {uri}'),
    oneOffDash: replacePlaceholders(ctx, '{method} {nosuch}', { emptyValue: '-' }),
    oneOffEmpty: replacePlaceholders(ctx, '{method} {nosuch}'),
  }));
  assert.deepEqual(value, {
    plain: 'no placeholders \\ here',
    escaped: 'only {escaped} braces',
    unpaired: '{unpaired',
    oneOff: 'GET /p?q=1',
    oneOffAgain: 'GET /p?q=1',
    oneOffDash: 'GET -',
    oneOffEmpty: 'GET ',
  });
});

test('replacePlaceholders stays correct past its cache bound', async () => {
  const { value } = await serve('GET /z HTTP/1.1\r\nHost: h\r\n\r\n', (ctx) => {
    const out: string[] = [];
    for (let i = 0; i < 600; i++)
      out.push(replacePlaceholders(ctx, `${i}{path}`, { emptyValue: String(i % 10) }));
    return out;
  });
  value.forEach((v, i) => assert.equal(v, `${i}/z`));
});

test('response placeholders: status, size, response headers, latency', async () => {
  const { value } = await serve(
    'GET / HTTP/1.1\r\nHost: h\r\n\r\n',
    (ctx) => {
      ctx.res.statusCode = 404;
      ctx.res.setHeader('X-Out', ['a', 'b']);
      ctx.res.setHeader('X-Num', 42);
      ctx.res.setHeader('Content-Type', 'text/plain');
      ctx.res.write('x'.repeat(1234));
      return renderAll(ctx, [
        '{status} {size}',
        '{<x-out}|{<X-NUM}|{<Content-Type}|{<Missing}|{<}',
        '{latency}',
        '{latency_ms}',
      ]);
    },
    { ageMs: 1234.4 },
  );
  assert.equal(value['{status} {size}'], '404 1234');
  assert.equal(value['{<x-out}|{<X-NUM}|{<Content-Type}|{<Missing}|{<}'], 'a,b|42|text/plain|-|-');
  // 1234.4ms ago, rounded to the millisecond (allowing the render itself up to 60ms).
  assert.match(value['{latency}'], /^1\.2(3[4-9]|[4-9]\d)s$/);
  const ms = Number(value['{latency_ms}']);
  assert.ok(ms >= 1234 && ms < 1300, value['{latency_ms}']);
});

test('latency rounding (Caddy TestRound) and formatting', () => {
  assert.equal(roundLatencyNanos(559_935), 560_000); // 559.935µs -> 560µs
  assert.equal(roundLatencyNanos(1_550_000), 2_000_000); // 1.55ms -> 2ms
  assert.equal(roundLatencyNanos(1_555_500_000), 1_556_000_000); // 1.5555s -> 1.556s
  assert.equal(roundLatencyNanos(62_003_500_000), 62_004_000_000); // 1m2.0035s -> 1m2.004s
  assert.equal(roundLatencyNanos(1_499_999), 1_000_000);
  assert.equal(roundLatencyNanos(1_500), 2_000);
  assert.equal(roundLatencyNanos(999), 999);
  assert.equal(roundLatencyNanos(0), 0);
});

test('{when} and friends', async () => {
  const { value } = await serve('GET / HTTP/1.1\r\nHost: h\r\n\r\n', (ctx) => {
    const t = compileTemplate('{when}|{when_iso_local}|{when_iso}|{when_unix}|{when_unix_ms}');
    const before = Date.now();
    const got = t.render(ctx);
    const again = t.render(ctx);
    const after = Date.now();
    return { before, got, again, after };
  });
  const [when, isoLocal, iso, unix, unixMs] = value.got.split('|') as [
    string,
    string,
    string,
    string,
    string,
  ];
  assert.ok(Number(unixMs) >= value.before && Number(unixMs) <= value.after, unixMs);
  const secs = new Set([Math.floor(value.before / 1000), Math.floor(value.after / 1000)]);
  const sec = Number(unix);
  assert.ok(secs.has(sec), unix);
  const d = new Date(sec * 1000);
  assert.equal(when, formatCommonLogTime(d));
  assert.equal(isoLocal, formatIsoLocal(d));
  assert.equal(iso, formatIsoUtc(d));
  assert.match(when, /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$/);
  if (secs.size === 1)
    assert.equal(value.again.split('|').slice(0, 4).join('|'), value.got.split('|').slice(0, 4).join('|'));
});

test('time formats in other zones', () => {
  const saved = process.env.TZ;
  try {
    const d = new Date(Date.UTC(2006, 0, 2, 22, 4, 5, 2));
    process.env.TZ = 'America/Denver';
    assert.equal(formatCommonLogTime(d), '02/Jan/2006:15:04:05 -0700');
    assert.equal(formatIsoLocal(d), '2006-01-02T15:04:05');
    assert.equal(formatIsoUtc(d), '2006-01-02T22:04:05Z');
    process.env.TZ = 'Asia/Kolkata';
    assert.equal(formatCommonLogTime(d), '03/Jan/2006:03:34:05 +0530');
    assert.equal(formatIsoLocal(d), '2006-01-03T03:34:05');
    process.env.TZ = 'UTC';
    assert.equal(formatCommonLogTime(new Date(Date.UTC(999, 11, 9, 1, 2, 3))), '09/Dec/0999:01:02:03 +0000');
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('HTTP/1.0 without Host', async () => {
  const { value } = await serve('GET /x HTTP/1.0\r\n\r\n', (ctx) =>
    renderAll(ctx, ['{host}|{hostonly}|{label1}|{server_port}|{proto}', '{request}']),
  );
  assert.equal(value['{host}|{hostonly}|{label1}|{server_port}|{proto}'], '-|-|-|80|HTTP/1.0');
  assert.equal(value['{request}'], 'GET /x HTTP/1.0\\r\\n\\r\\n');
});

test('IPv6 Host headers', async () => {
  const t = ['{host}|{hostonly}|{server_port}|{label1}'];
  const a = await serve('GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n', (ctx) => renderAll(ctx, t));
  assert.equal(a.value[t[0]], '[::1]:8443|::1|8443|[::1]:8443');
  const b = await serve('GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n', (ctx) => renderAll(ctx, t));
  assert.equal(b.value[t[0]], '[::1]|[::1]|80|[::1]');
});

test('absolute-form request target and chunked requests in {uri} and {request}', async () => {
  const { value } = await serve(
    'POST http://example.com/up?a=1 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n' +
      'Content-Type: text/plain\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    (ctx) => renderAll(ctx, ['{uri}', '{request}', '{host}']),
  );
  assert.equal(value['{uri}'], '/up?a=1');
  // Go's DumpRequest: no Host line for an absolute-form target; Transfer-Encoding first.
  assert.equal(
    value['{request}'],
    'POST http://example.com/up?a=1 HTTP/1.1\\r\\nTransfer-Encoding: chunked\\r\\nContent-Type: text/plain\\r\\n\\r\\n',
  );
  assert.equal(value['{host}'], 'example.com');
});

test('{remote} strips the IPv4-mapped IPv6 prefix', async (t) => {
  let served: Served<Record<string, string>>;
  try {
    served = await serve(
      'GET / HTTP/1.1\r\nHost: h\r\n\r\n',
      (ctx) => ({
        raw: ctx.req.socket.remoteAddress ?? '',
        ...renderAll(ctx, ['{remote}']),
      }),
      { listenHost: '::' },
    );
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'EAFNOSUPPORT' ||
      (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL'
    ) {
      t.skip('no IPv6 on this machine');
      return;
    }
    throw err;
  }
  if (served.value.raw !== '::ffff:127.0.0.1') {
    t.skip(`dual-stack socket not available (remote ${served.value.raw})`);
    return;
  }
  assert.equal(served.value['{remote}'], '127.0.0.1');
});

const TLS_TEMPLATES = [
  '{scheme}|{server_port}|{tls_protocol}',
  '{tls_cipher}',
  '{tls_client_fingerprint}',
  '{tls_client_serial}',
  '{tls_client_s_dn}',
  '{tls_client_i_dn}',
  '{tls_client_v_start}',
  '{tls_client_v_end}',
  '{tls_client_v_remain}',
  '{tls_client_raw_cert}',
  '{tls_client_escaped_cert}',
];

test('TLS placeholders with a client certificate', async () => {
  const served = await serve(
    'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n',
    (ctx) => {
      const before = Date.now();
      const got = renderAll(ctx, TLS_TEMPLATES);
      return { got, before, after: Date.now() };
    },
    { tls: { key: CLIENT_KEY, cert: CLIENT_CERT, servername: 'localhost', maxVersion: 'TLSv1.2' } },
  );
  const got = served.value.got;
  const x509 = new X509Certificate(CLIENT_CERT);
  assert.equal(got['{scheme}|{server_port}|{tls_protocol}'], 'https|443|tls1.2');
  assert.equal(got['{tls_cipher}'], served.clientCipher);
  assert.match(got['{tls_cipher}'], /^ECDHE-ECDSA-/);
  assert.equal(got['{tls_client_fingerprint}'], createHash('sha256').update(x509.raw).digest('hex'));
  assert.equal(got['{tls_client_serial}'], 'ab12cd34');
  // Go's pkix.Name.String(): fixed attribute order, reversed; its own names; RFC 2253 escapes.
  assert.equal(
    got['{tls_client_s_dn}'],
    'SERIALNUMBER=42,CN=client one,OU=Dev\\+Ops,O=Acme\\, Inc.,ST=Utah,C=US',
  );
  assert.equal(got['{tls_client_i_dn}'], got['{tls_client_s_dn}']); // self-signed
  assert.equal(got['{tls_client_v_start}'], 'Jan 02 03:04:05 2000 UTC');
  assert.equal(got['{tls_client_v_end}'], 'Jan 01 00:00:00 2100 UTC');
  const end = Date.UTC(2100, 0, 1);
  const remain = new Set(
    [served.value.before, served.value.after].map((now) => String(Math.trunc((end - now) / 86_400_000))),
  );
  assert.ok(remain.has(got['{tls_client_v_remain}']), got['{tls_client_v_remain}']);
  assert.equal(got['{tls_client_raw_cert}'], x509.raw.toString('base64'));
  assert.equal(got['{tls_client_escaped_cert}'], encodeURIComponent(CLIENT_CERT).replaceAll('%20', '+'));
});

test('TLS 1.3 without a client certificate', async () => {
  const served = await serve(
    'GET / HTTP/1.1\r\nHost: localhost:8443\r\n\r\n',
    (ctx) => renderAll(ctx, TLS_TEMPLATES),
    {
      tls: { servername: 'localhost', minVersion: 'TLSv1.3' },
    },
  );
  const got = served.value;
  assert.equal(got['{scheme}|{server_port}|{tls_protocol}'], 'https|8443|tls1.3');
  assert.equal(got['{tls_cipher}'], served.clientCipher);
  assert.match(got['{tls_cipher}'], /^TLS_/);
  for (const name of TLS_TEMPLATES.slice(2)) assert.equal(got[name], '-', name);
});

test('queryEscape is Go url.QueryEscape', () => {
  assert.equal(queryEscape('plain-_.~AZaz09'), 'plain-_.~AZaz09');
  assert.equal(queryEscape("a b+c/é*!'()~"), 'a+b%2Bc%2F%C3%A9%2A%21%27%28%29~');
  assert.equal(queryEscape('\u{1F600}\n%'), '%F0%9F%98%80%0A%25');
  assert.equal(queryEscape('\u0800\u07ff'), '%E0%A0%80%DF%BF');
  assert.equal(queryEscape('\ud800x'), '%EF%BF%BDx');
  assert.equal(queryEscape(''), '');
});

test('queryArg is Go URL.Query().Get', () => {
  assert.equal(queryArg('a=1&a=2', 'a'), '1');
  assert.equal(queryArg('a', 'a'), '');
  assert.equal(queryArg('a=&b=2', 'b'), '2');
  assert.equal(queryArg('a%=1&a=2', 'a'), '2'); // a malformed key is skipped
  assert.equal(queryArg('a=%zz&a=3', 'a'), '3'); // so is a malformed value
  assert.equal(queryArg('a+b=c+d', 'a b'), 'c d');
  assert.equal(queryArg('%61=x', 'a'), 'x');
  assert.equal(queryArg('&&a=1&', 'a'), '1');
  assert.equal(queryArg('a=1;b=2&a=3', 'a'), '3');
  assert.equal(queryArg('x=%E2%82%AC', 'x'), '€');
  assert.equal(queryArg('ab=1&a=2', 'a'), '2');
  assert.equal(queryArg('', 'a'), '');
});

test('goDistinguishedName regroups like Go pkix.Name.String', () => {
  assert.equal(goDistinguishedName('CN=localhost'), 'CN=localhost');
  assert.equal(
    goDistinguishedName(
      'CN=x\nOU=b\nC=US\nOU=a\nemailAddress=x@example.com\nL=Town\nstreet=Main St\npostalCode=123',
    ),
    'CN=x,OU=b+OU=a,POSTALCODE=123,STREET=Main St,L=Town,C=US,emailAddress=x@example.com',
  );
  // A single CN and serialNumber in Go's Name: the last one wins.
  assert.equal(
    goDistinguishedName('CN=first + CN=second\nserialNumber=1\nserialNumber=2'),
    'SERIALNUMBER=2,CN=second',
  );
  assert.equal(goDistinguishedName(''), '');
});
