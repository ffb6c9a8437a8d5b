import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { compose, type Handler, type Middleware } from '../../src/core/chain.js';
import { dispatch } from '../../src/core/dispatch.js';
import { HttpError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Site } from '../../src/core/site.js';
import { request } from '../helpers/http.js';

function site(handler: Handler, path = ''): Site {
  return {
    label: 'test',
    handler,
    config: {
      address: { original: ':0', scheme: '', host: '', port: '0', path },
      root: '/',
      indexFiles: [],
      bindHost: undefined,
      hiddenFiles: [],
      sourceFile: 'Caddyfile',
    },
  };
}

/** Serves every request through dispatch() on the given site; returns the port and a closer. */
async function serve(s: Site): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => void dispatch(s, req, res, silentLogger()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('compose', () => {
  test('outermost first on the way in, last on the way out', async () => {
    const trace: string[] = [];
    const mw =
      (name: string): Middleware =>
      (next) =>
      async (ctx) => {
        trace.push(`${name}>`);
        await next(ctx);
        trace.push(`<${name}`);
      };
    const handler = compose([mw('a'), mw('b'), mw('c')], async () => {
      trace.push('end');
    });
    const { port, close } = await serve(
      site(async (ctx) => {
        await handler(ctx);
        ctx.res.end('ok');
      }),
    );
    try {
      assert.equal((await request(port, '/')).body, 'ok');
      assert.deepEqual(trace, ['a>', 'b>', 'c>', 'end', '<c', '<b', '<a']);
    } finally {
      await close();
    }
  });

  test('with no middleware the innermost handler is the chain', () => {
    const end: Handler = async () => {};
    assert.equal(compose([], end), end);
  });
});

describe('dispatch', () => {
  test('HttpError becomes the default page with its headers', async () => {
    const { port, close } = await serve(
      site(async (ctx) => {
        ctx.res.setHeader('X-Kept', 'yes');
        ctx.res.setHeader('Content-Type', 'text/html');
        throw new HttpError(401, undefined, { headers: { 'WWW-Authenticate': 'Basic realm="x"' } });
      }),
    );
    try {
      const r = await request(port, '/');
      assert.equal(r.status, 401);
      assert.equal(r.body, '401 Unauthorized\n');
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['www-authenticate'], 'Basic realm="x"');
      assert.equal(r.headers['x-kept'], 'yes', 'headers set by outer middleware stay');
      const head = await request(port, '/', { method: 'HEAD' });
      assert.equal(head.status, 401);
      assert.equal(head.body, '');
    } finally {
      await close();
    }
  });

  test('any other throw is a 500 and the server keeps going', async () => {
    const { port, close } = await serve(
      site(async () => {
        throw new TypeError('boom');
      }),
    );
    try {
      const r = await request(port, '/');
      assert.equal(r.status, 500);
      assert.equal(r.body, '500 Internal Server Error\n');
      assert.equal((await request(port, '/')).status, 500);
    } finally {
      await close();
    }
  });

  test('a failure after the headers went out cuts the connection instead of faking a complete body', async () => {
    const { port, close } = await serve(
      site(async (ctx) => {
        ctx.res.writeHead(200, { 'Content-Length': '100' });
        ctx.res.write('partial');
        await new Promise((r) => setTimeout(r, 10));
        throw new Error('upstream died');
      }),
    );
    try {
      await assert.rejects(request(port, '/'), /aborted|socket hang up|ECONNRESET/);
    } finally {
      await close();
    }
  });

  test('malformed percent-encoding and NUL bytes are a 400 before the chain runs', async () => {
    let ran = 0;
    const { port, close } = await serve(
      site(async (ctx) => {
        ran++;
        ctx.res.end(ctx.path);
      }),
    );
    try {
      assert.equal((await request(port, '/a%zz')).status, 400);
      assert.equal((await request(port, '/a%00b')).status, 400);
      assert.equal(ran, 0);
      assert.equal((await request(port, '/a%20b')).body, '/a b');
    } finally {
      await close();
    }
  });

  test('the site path prefix is stripped from ctx.path but kept in originalPath', async () => {
    const { port, close } = await serve(
      site(async (ctx) => {
        ctx.res.end(`${ctx.path}|${ctx.originalPath}|${ctx.uri}`);
      }, '/blog'),
    );
    try {
      assert.equal((await request(port, '/blog/a%20b?x=1')).body, '/a b|/blog/a b|/a%20b?x=1');
      assert.equal((await request(port, '/blog')).body, '/|/blog|/');
    } finally {
      await close();
    }
  });
});
