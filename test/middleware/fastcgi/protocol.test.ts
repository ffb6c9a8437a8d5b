// The FastCGI record layer, the CGI response head, and the directive's parsing, without php-fpm.
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../src/app.js';
import { Dispenser, parse } from '../../../src/caddyfile/index.js';
import { applyCgiHead, parseCgiHead, findHeaderEnd } from '../../../src/middleware/fastcgi/cgi-response.js';
import {
  decodePairs,
  encodeParams,
  encodeRecord,
  encodeRequest,
  encodeStream,
  RecordParser,
  RecordType,
  type FcgiRecord,
} from '../../../src/middleware/fastcgi/protocol.js';
import { DEFAULT_KEEPALIVE, parseEndpoint, parseFastcgi } from '../../../src/middleware/fastcgi/setup.js';

function records(buf: Buffer, chunkSize = buf.length): FcgiRecord[] {
  const parser = new RecordParser();
  const out: FcgiRecord[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) {
    parser.push(buf.subarray(i, i + chunkSize), (r) => out.push({ ...r, content: Buffer.from(r.content) }));
  }
  assert.equal(parser.buffered, 0, 'nothing left over');
  return out;
}

describe('FastCGI records', () => {
  test('a request starts with BEGIN_REQUEST (responder, FCGI_KEEP_CONN), then PARAMS, then STDIN', () => {
    const [begin, params, paramsEnd, stdinEnd] = records(encodeRequest(1, [['A', 'b']], true));
    assert.equal(begin.type, RecordType.BeginRequest);
    assert.equal(begin.requestId, 1);
    assert.deepEqual([...begin.content], [0, 1, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual(decodePairs(params.content), [['A', 'b']]);
    assert.deepEqual([paramsEnd.type, paramsEnd.content.length], [RecordType.Params, 0]);
    assert.deepEqual([stdinEnd.type, stdinEnd.content.length], [RecordType.Stdin, 0]);
    // With a body to follow, the STDIN records are the body's.
    assert.equal(records(encodeRequest(1, [['A', 'b']], false)).length, 3);
  });

  test('every request start is BEGIN_REQUEST, the PARAMS stream encodeParams makes, and the end of STDIN', () => {
    // The usual request is written by a path of its own: the bytes must be the general path's.
    const begin = encodeRecord(RecordType.BeginRequest, 7, Buffer.from([0, 1, 1, 0, 0, 0, 0, 0]));
    const usual: [string, string][] = [
      ['SCRIPT_FILENAME', '/srv/www/index.php'],
      ['QUERY_STRING', ''],
      ['REQUEST_URI', `/${'p'.repeat(200)}?q=1`],
      ['HTTP_HOST', 'example.com'],
    ];
    const lists: [string, string][][] = [
      [],
      [['A', '']],
      usual,
      [...usual, ['HTTP_X', 'caf\u00e9']], // not ASCII: from there on, UTF-8
      [...usual, ['LONG', 'x'.repeat(5000)]], // a pair too long for the loop
      Array.from({ length: 900 }, (_, i): [string, string] => [`HTTP_X_${i}`, 'v'.repeat(70)]), // two records
    ];
    for (const list of lists)
      for (const endStdin of [true, false]) {
        const expected = Buffer.concat([
          begin,
          encodeParams(7, list),
          ...(endStdin ? [encodeRecord(RecordType.Stdin, 7)] : []),
        ]);
        assert.deepEqual(encodeRequest(7, list, endStdin), expected, `${list.length} pairs, ${endStdin}`);
      }
  });

  test('PARAMS: non-ASCII values are UTF-8; a value cut to fit a record ends on a whole character', () => {
    const buf = encodeParams(1, [
      ['QUERY_STRING', 'q=é€😀'],
      ['HUGE', 'é'.repeat(40_000)],
    ]);
    const pairs = records(buf).flatMap((r) => decodePairs(r.content));
    assert.deepEqual(pairs[0], ['QUERY_STRING', 'q=é€😀']);
    assert.equal(pairs[1][0], 'HUGE');
    assert.match(pairs[1][1], /^é+$/);
    assert.ok(Buffer.byteLength(pairs[1][1]) > 65_000 && Buffer.byteLength(pairs[1][1]) < 0xffff);
  });

  test('records are padded to 8 bytes', () => {
    const buf = encodeStream(RecordType.Stdin, 1, Buffer.from('abc'));
    assert.equal(buf.length, 16);
    assert.equal(buf[6], 5, 'padding length');
  });

  test('PARAMS: 1- and 4-byte lengths round-trip, then the empty record', () => {
    const long = 'v'.repeat(300);
    const name127 = 'N'.repeat(127);
    const buf = encodeParams(1, [
      ['SHORT', 'x'],
      ['LONG', long],
      [name127, 'y'.repeat(128)],
      ['EMPTY', ''],
    ]);
    const recs = records(buf);
    assert.equal(recs.length, 2);
    assert.equal(recs[1].content.length, 0, 'the stream ends with an empty PARAMS record');
    // 300 needs the 4-byte form with the top bit set.
    const c = recs[0].content;
    assert.equal(c[0], 5);
    assert.equal(c[1], 1);
    assert.deepEqual(decodePairs(c), [
      ['SHORT', 'x'],
      ['LONG', long],
      [name127, 'y'.repeat(128)],
      ['EMPTY', ''],
    ]);
    const at = 2 + 5 + 1 + 1; // after SHORT=x, LONG's name length byte
    assert.equal(c[at] & 0x80, 0x80, 'the 4-byte length has its top bit set');
  });

  test('PARAMS over 64 KB: split into several records at pair boundaries, a giant value cut', () => {
    const pairs: [string, string][] = [];
    for (let i = 0; i < 40; i++) pairs.push([`HTTP_X_${i}`, 'a'.repeat(4000)]);
    pairs.push(['HUGE', 'b'.repeat(100_000)]);
    const recs = records(encodeParams(1, pairs));
    assert.ok(recs.length >= 4);
    for (const r of recs) assert.ok(r.content.length <= 0xffff);
    const decoded = recs.flatMap((r) => decodePairs(r.content));
    assert.equal(decoded.length, 41);
    assert.deepEqual(decoded.slice(0, 40), pairs.slice(0, 40));
    assert.equal(decoded[40][0], 'HUGE');
    assert.ok(decoded[40][1].length > 65_000 && decoded[40][1].length < 0xffff);
  });

  test('a STDIN chunk over 64 KB becomes several records; the parser reassembles any chunking', () => {
    const data = Buffer.alloc(200_000);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const buf = encodeStream(RecordType.Stdout, 1, data);
    for (const size of [1, 7, 8, 1000, 65_536, buf.length]) {
      const recs = records(buf, size);
      assert.equal(recs.length, 4);
      assert.deepEqual(Buffer.concat(recs.map((r) => r.content)), data, `chunks of ${size}`);
    }
  });

  test('a bad version is a protocol error', () => {
    const buf = encodeStream(RecordType.Stdout, 1, Buffer.from('x'));
    buf[0] = 2;
    assert.throws(() => new RecordParser().push(buf, () => undefined), /protocol error/);
  });
});

describe('CGI response head', () => {
  test('Status, repeated headers, LF or CRLF', () => {
    const text =
      'Status: 404 Not Found\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Type: text/html\r\n\r\nbody';
    const buf = Buffer.from(text);
    const end = findHeaderEnd(buf);
    assert.equal(buf.subarray(end).toString(), 'body');
    const head = parseCgiHead(buf.toString('latin1', 0, end));
    assert.equal(head.status, 404);
    assert.deepEqual(head.headers.get('set-cookie')?.values, ['a=1', 'b=2']);
    assert.equal(head.headers.get('content-type')?.name, 'Content-Type');
    assert.equal(head.headers.has('status'), false);
    assert.equal(findHeaderEnd(Buffer.from('A: 1\nB: 2\n\nrest')), 11);
  });

  test('Location without Status is a 302; no Status is 200; a bad status throws', () => {
    assert.equal(parseCgiHead('Location: /x\n').status, 302);
    assert.equal(parseCgiHead('Content-Type: text/plain\n').status, 200);
    assert.throws(() => parseCgiHead('Status: abc\n'), /malformed CGI Status/);
    assert.throws(() => parseCgiHead('no colon here\n'), /malformed CGI header/);
  });

  test('a block seen before gives the same head, a changed one its own, a bad one throws every time', () => {
    const a = 'Content-Type: text/plain\r\nX-A: 1\r\nX-A: 2\r\n';
    const b = 'Status: 404 Not Found\r\nContent-Type: text/html\r\n';
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(parseCgiHead(a).headers.get('x-a')?.values, ['1', '2']);
      assert.equal(parseCgiHead(a).status, 200);
      assert.equal(parseCgiHead(b).status, 404);
      assert.equal(parseCgiHead(b).headers.has('x-a'), false);
      assert.throws(() => parseCgiHead('Status: 20x\n'), /malformed CGI Status/);
    }
    // A response gets its own list of values: changing it does not change the next response's.
    const first = new ServerResponse(new IncomingMessage(new Socket()));
    applyCgiHead(first, parseCgiHead(a));
    (first.getHeader('x-a') as string[]).push('3');
    const second = new ServerResponse(new IncomingMessage(new Socket()));
    applyCgiHead(second, parseCgiHead(a));
    assert.deepEqual(second.getHeader('x-a'), ['1', '2']);
  });
});

describe('fastcgi directive parsing', () => {
  const load = (body: string) =>
    loadConfig(
      { text: `127.0.0.1:0 {\n${body}\n}\n`, name: 'Caddyfile' },
      { root: '.', host: '', port: '0', cwd: process.cwd(), env: {} },
    );

  test('endpoints', () => {
    assert.deepEqual(parseEndpoint('127.0.0.1:9000'), { network: 'tcp', host: '127.0.0.1', port: 9000 });
    assert.deepEqual(parseEndpoint('tcp://php:9000'), { network: 'tcp', host: 'php', port: 9000 });
    assert.deepEqual(parseEndpoint('fastcgi://[::1]:9000'), { network: 'tcp', host: '::1', port: 9000 });
    assert.deepEqual(parseEndpoint('unix:/run/php.sock'), { network: 'unix', path: '/run/php.sock' });
    assert.deepEqual(parseEndpoint('/run/php.sock'), { network: 'unix', path: '/run/php.sock' });
    assert.throws(() => parseEndpoint('php'), /needs a port/);
    assert.throws(() => parseEndpoint('srv://php.local'), /SRV upstreams are not supported/);
  });

  test('keepalive: 64 idle connections per endpoint and process unless set; 0 keeps none', () => {
    const rules = (body: string) => {
      const tokens = parse(`:0 {\n${body}\n}\n`, 'Caddyfile', { directives: ['fastcgi'] }).blocks[0].tokens;
      return parseFastcgi(new Dispenser(tokens.get('fastcgi')!), {
        cwd: '/',
        env: {},
        workers: 1,
        version: '0',
      } as never);
    };
    assert.equal(DEFAULT_KEEPALIVE, 64);
    assert.equal(rules('fastcgi / 127.0.0.1:9000 php')[0].keepalive, 64);
    assert.equal(rules('fastcgi / 127.0.0.1:9000 php {\n keepalive 0\n}')[0].keepalive, 0);
    assert.equal(rules('fastcgi / 127.0.0.1:9000 php {\n keepalive 16\n}')[0].keepalive, 16);
  });

  test('the process model comes from the SetupContext: idle connections kept briefly under -workers', () => {
    const rule = (workers: number) => {
      const tokens = parse(':0 {\nfastcgi / 127.0.0.1:9000 php\n}\n', 'Caddyfile', {
        directives: ['fastcgi'],
      }).blocks[0].tokens;
      const ctx = { cwd: '/', env: {}, workers, version: '9.8.7' } as never;
      return parseFastcgi(new Dispenser(tokens.get('fastcgi')!), ctx)[0];
    };
    assert.equal(rule(1).idleTimeoutMs, 15_000);
    assert.equal(rule(4).idleTimeoutMs, 250);
    assert.equal(rule(1).software, 'nodecaddy/9.8.7');
  });

  test('good configs load; bad ones fail with file:line and the expected form', () => {
    load(
      'fastcgi / 127.0.0.1:9000 php {\n ext .php\n split .php\n index index.php main.php\n env A b\n root /srv\n except /static /assets\n upstream unix:/run/b.sock\n connect_timeout 2s\n read_timeout 1m\n send_timeout 0\n policy least_conn\n keepalive 0\n}',
    );
    const bad: [string, RegExp][] = [
      ['fastcgi /', /Caddyfile:2 - Error during parsing: Wrong argument count/],
      ['fastcgi / 127.0.0.1:9000 python', /python is not a valid preset name/],
      [
        'fastcgi / 127.0.0.1:9000 {\n fastcgi_read_timeout 600s\n}',
        /Caddyfile:3 .*Unknown subdirective 'fastcgi_read_timeout'/,
      ],
      ['fastcgi / 127.0.0.1:9000 {\n read_timeout soon\n}', /invalid duration/],
      ['fastcgi / 127.0.0.1:9000 {\n env ONLY\n}', /Expected: env <NAME> <value>/],
      ['fastcgi / 127.0.0.1:9000 {\n policy fastest\n}', /unknown policy 'fastest'/],
      ['fastcgi / 127.0.0.1:9000 {\n upstream nowhere\n}', /needs a port/],
      ['fastcgi / 127.0.0.1:9000 {\n keepalive -1\n}', /Caddyfile:3 .*keepalive must be a whole number/],
      ['fastcgi / 127.0.0.1:9000 {\n keepalive 2 4\n}', /Wrong argument count/],
    ];
    for (const [body, re] of bad) assert.throws(() => load(body), re, body);
  });
});
