// The upstream client's response parser on its own: framing (RFC 9112 §6.3), chunked bodies cut at every
// byte boundary, trailers, interim responses, persistence, the shape of the headers, and what it refuses.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, test } from 'node:test';
import { MAX_HEAD_BYTES, ResponseParser, type ResponseHead } from '../../../src/core/h1/parser.js';

interface Parsed {
  head: ResponseHead | undefined;
  heads: number;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
  complete: boolean;
  reusable: boolean;
}

/** Feeds the pieces in order; `close` then tells the parser the connection closed. */
function parse(pieces: (string | Buffer)[], opts: { head?: boolean; close?: boolean } = {}): Parsed {
  const out: Parsed = {
    head: undefined,
    heads: 0,
    body: '',
    trailers: undefined,
    complete: false,
    reusable: false,
  };
  const parser = new ResponseParser(opts.head ?? false, {
    onHead: (h) => {
      out.head = h;
      out.heads++;
    },
    onBody: (chunk) => {
      assert.ok(!out.complete, 'no body after the end');
      out.body += chunk.toString('latin1');
    },
    onComplete: (trailers) => {
      assert.ok(!out.complete, 'one end');
      out.complete = true;
      out.trailers = trailers;
    },
  });
  for (const p of pieces) parser.execute(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  if (opts.close) parser.finish();
  out.reusable = parser.reusable;
  return out;
}

/** Every way of cutting `text` in two, and byte by byte. */
function splits(text: string): string[][] {
  const all = [[text], [...text]];
  for (let i = 1; i < text.length; i++) all.push([text.slice(0, i), text.slice(i)]);
  return all;
}

const refuses = (pieces: string[], message: RegExp, opts: { close?: boolean } = {}) =>
  assert.throws(() => parse(pieces, opts), message);

const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n' +
  '5;name=value;flag\r\nhello\r\n' +
  '1 ;ext="quoted;still"\r\n \r\n' +
  'A\r\n0123456789\r\n' +
  '0;last\r\nX-Sum: abc\r\nX-Other:  spaced  \r\n\r\n';

describe('h1 response parser', () => {
  test('a chunked body with extensions and trailers, cut at every byte boundary', () => {
    for (const pieces of splits(CHUNKED)) {
      const r = parse(pieces);
      assert.equal(r.head?.statusCode, 200);
      assert.equal(r.body, 'hello 0123456789', JSON.stringify(pieces.slice(0, 2)));
      assert.deepEqual({ ...r.trailers }, { 'x-sum': 'abc', 'x-other': 'spaced' });
      assert.ok(r.complete && r.reusable);
    }
  });

  test('a chunked body without trailers; chunk sizes in either case of hex', () => {
    const r = parse([
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\nB\r\n',
      'HELLO WORLD\r\n0\r\n\r\n',
    ]);
    assert.equal(r.body, 'hello worldHELLO WORLD');
    assert.equal(r.trailers, undefined);
    assert.ok(r.reusable);
  });

  test('bad chunk framing is refused', () => {
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    refuses([`${head}zz\r\n`], /invalid chunk size/);
    refuses([`${head}\r\n`], /invalid chunk size/);
    refuses([`${head}5 5\r\nhello\r\n`], /invalid chunk size/);
    refuses([`${head}5\nhello\r\n`], /invalid chunk size/);
    refuses([`${head}5\rhello\r\n`], /chunk size line not ended by CRLF/);
    refuses([`${head}5\r\nhelloX\r\n`], /chunk data not ended by CRLF/);
    refuses([`${head}${'f'.repeat(14)}\r\n`], /chunk size too large/);
    refuses([`${head}5;${'x'.repeat(5000)}`], /chunk extension too long/);
    refuses([`${head}0\r\n${'X-Big: y\r\n'.repeat(8000)}`], /trailer section too large/);
  });

  test('Content-Length: repeats that agree are one; differing or junk values are refused', () => {
    const r = parse(['HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\nhello']);
    assert.equal(r.body, 'hello');
    assert.equal(r.head?.headers['content-length'], '5');
    assert.ok(r.reusable);
    refuses(
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'],
      /differing Content-Length/,
    );
    refuses(['HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n'], /differing Content-Length/);
    refuses(['HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n'], /invalid Content-Length/);
    refuses(['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'], /invalid Content-Length/);
    refuses(['HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n'], /invalid Content-Length/);
  });

  test('Transfer-Encoding wins over Content-Length, which is dropped; the connection is not reused', () => {
    const r = parse([
      'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    ]);
    assert.equal(r.body, 'ok');
    assert.equal(r.head?.headers['content-length'], undefined);
    assert.ok(r.complete && !r.reusable);
    refuses(['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'], /HTTP\/1.0/);
  });

  test('a transfer coding other than chunked is refused: its body would pass on still encoded', () => {
    for (const te of ['gzip, chunked', 'gzip', 'chunked, chunked', 'deflate,chunked', 'identity'])
      refuses(
        [`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`],
        /unsupported transfer coding/,
      );
    // Two header lines make one list (RFC 9110 §5.3).
    refuses(
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      /unsupported transfer coding/,
    );
    const ok = parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n']);
    assert.equal(ok.body, 'ok');
  });

  test('a head over the size limit is refused, whole or in pieces; one just under it is taken', () => {
    const filler = (n: number) => `X-Fill: ${'a'.repeat(n)}\r\n`;
    const big = `HTTP/1.1 200 OK\r\n${filler(MAX_HEAD_BYTES)}\r\n`;
    refuses([big], /response head too large/);
    refuses([...big.match(/[^]{1,1000}/g)!], /response head too large/);
    refuses([big.slice(0, MAX_HEAD_BYTES + 10)], /response head too large/);
    const fits = `HTTP/1.1 200 OK\r\n${filler(MAX_HEAD_BYTES - 100)}Content-Length: 0\r\n\r\n`;
    assert.ok(parse([fits.slice(0, 3000), fits.slice(3000)]).complete);
  });

  test('interim 1xx responses are skipped; a 101 to a plain request is refused', () => {
    const text =
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
      'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok';
    for (const pieces of splits(text)) {
      const r = parse(pieces);
      assert.equal(r.heads, 1);
      assert.equal(r.head?.statusCode, 201);
      assert.equal(r.head?.statusMessage, 'Created');
      assert.equal(r.head?.headers.link, undefined);
      assert.equal(r.body, 'ok');
    }
    refuses(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'], /101/);
    refuses(['HTTP/1.1 100 Continue\r\n\r\n'.repeat(6)], /too many interim/);
  });

  test('a 101 to an upgrade request ends the HTTP part: the head as received, then the bytes that follow', () => {
    const text =
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n\r\n';
    for (const [first, second] of [
      [text + 'frame1', ''],
      [text.slice(0, 20), text.slice(20) + 'frame1'],
    ]) {
      const seen: { raw?: string[]; rest?: string; bodies: number } = { bodies: 0 };
      const parser = new ResponseParser(
        false,
        {
          onHead: () => assert.fail('no ordinary head'),
          onBody: () => seen.bodies++,
          onComplete: () => assert.fail('no completion'),
          onUpgrade: (head, rest) => {
            assert.equal(head.statusCode, 101);
            assert.equal(head.headers.upgrade, 'websocket');
            seen.raw = head.rawHeaders;
            seen.rest = rest.toString();
          },
        },
        true,
      );
      parser.execute(Buffer.from(first));
      if (second) parser.execute(Buffer.from(second));
      parser.execute(Buffer.from('more frames are not HTTP'));
      assert.deepEqual(seen.raw, ['Upgrade', 'websocket', 'Sec-WebSocket-Accept', 'abc']);
      assert.equal(seen.rest, 'frame1');
      assert.equal(seen.bodies, 0);
    }
  });

  test('persistence: HTTP/1.1 unless Connection: close; HTTP/1.0 only with keep-alive', () => {
    const reusable = (head: string) => parse([`${head}\r\nContent-Length: 2\r\n\r\nok`]).reusable;
    assert.equal(reusable('HTTP/1.1 200 OK'), true);
    assert.equal(reusable('HTTP/1.1 200 OK\r\nConnection: close'), false);
    assert.equal(reusable('HTTP/1.1 200 OK\r\nConnection: keep-alive, Close'), false);
    assert.equal(reusable('HTTP/1.0 200 OK'), false);
    assert.equal(reusable('HTTP/1.0 200 OK\r\nConnection: Keep-Alive'), true);
  });

  test('a body without length runs until close and never leaves the connection reusable', () => {
    for (const version of ['1.0', '1.1']) {
      const r = parse([`HTTP/${version} 200 OK\r\nContent-Type: text/plain\r\n\r\nall `, 'of it'], {
        close: true,
      });
      assert.equal(r.body, 'all of it');
      assert.ok(r.complete && !r.reusable);
    }
  });

  test('a connection closing before the end of a framed body is an error', () => {
    refuses(
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'],
      /closed before the response was complete/,
      { close: true },
    );
    refuses(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'], /closed before/, {
      close: true,
    });
    refuses(['HTTP/1.1 200 OK\r\n'], /closed before/, { close: true });
  });

  test('bytes after the end of the response: the body is whole, the connection not reusable', () => {
    const r = parse(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n']);
    assert.equal(r.body, 'ok');
    assert.ok(r.complete && !r.reusable);
    const later = parse(['HTTP/1.1 204 No Content\r\n\r\n', 'junk']);
    assert.ok(later.complete && !later.reusable);
    const chunked = parse([`${CHUNKED}x`]);
    assert.ok(chunked.complete && !chunked.reusable);
  });

  test('no body for HEAD, 204 and 304, whatever they announce', () => {
    const head = parse(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'], { head: true });
    assert.ok(head.complete && head.reusable);
    assert.equal(head.head?.headers['content-length'], '100');
    for (const status of ['204 No Content', '304 Not Modified']) {
      const r = parse([`HTTP/1.1 ${status}\r\nContent-Length: 7\r\n\r\n`]);
      assert.ok(r.complete && r.reusable, status);
      assert.equal(r.body, '');
    }
  });

  test('headers are shaped as IncomingMessage.headers', () => {
    const r = parse([
      'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Many: one\r\nset-cookie: b=2\r\nx-many: two\r\n' +
        'Content-Type: text/plain\r\nContent-Type: text/html\r\nX-Empty:\r\nX-Tabs:\t v \t\r\nContent-Length: 0\r\n\r\n',
    ]);
    const h = r.head!.headers;
    assert.deepEqual(h['set-cookie'], ['a=1', 'b=2']);
    assert.equal(h['x-many'], 'one, two');
    assert.equal(h['content-type'], 'text/plain', 'the first of a single-valued field wins');
    assert.equal(h['x-empty'], '');
    assert.equal(h['x-tabs'], 'v');
  });

  test('malformed heads are refused', () => {
    refuses(['HTTP/2 200 OK\r\n\r\n'], /bad status line/);
    refuses(['HTTP/1.1 20 OK\r\n\r\n'], /bad status code/);
    refuses(['HTTP/1.1 200OK\r\n\r\n'], /bad status code/);
    refuses(['ICY 200 OK\r\n\r\n'], /bad status line/);
    refuses(['HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n'], /obsolete line folding/);
    refuses(['HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n'], /without a colon/);
    refuses(['HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n'], /invalid header name/);
    refuses(['HTTP/1.1 200 OK\r\nX-A: a\nX-Injected: 1\r\n\r\n'], /invalid character/);
    refuses(['HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n'], /invalid character/);
    // The status line may lack a reason phrase.
    assert.equal(parse(['HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n']).head?.statusMessage, '');
  });
});
