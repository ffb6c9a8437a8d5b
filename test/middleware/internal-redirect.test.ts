// internal's X-Accel-Redirect with inner handlers like proxy's: headers passed to writeHead, bodies piped
// through stream.pipeline, and a handler that never stops redirecting.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { Dispenser, parse } from '../../src/caddyfile/index.js';
import { compose, type Handler } from '../../src/core/chain.js';
import type { Site, SiteConfig } from '../../src/core/site.js';
import { dispatch } from '../../src/core/dispatch.js';
import { HookedResponse } from '../../src/core/response.js';
import { internal } from '../../src/middleware/internal.js';
import { request } from '../helpers/http.js';

const seen: string[] = [];
let server: http.Server;
let port: number;

const inner: Handler = async (ctx) => {
  seen.push(ctx.uri);
  if (ctx.path === '/final') {
    ctx.res.writeHead(200, { 'Content-Type': 'text/plain' });
    await pipeline(Readable.from(['final ', 'body']), ctx.res);
    return;
  }
  if (ctx.path.startsWith('/loop')) {
    ctx.res.setHeader('X-Accel-Redirect', `/loop${seen.length}`);
    ctx.res.end('ignored');
    return;
  }
  // Like a proxied app that answers with a redirect header, a length, an encoding and a streamed body.
  ctx.res.writeHead(200, { 'X-Accel-Redirect': '/final', 'Content-Length': '7', 'Content-Encoding': 'gzip' });
  await pipeline(Readable.from(['ignored']), ctx.res);
};

before(async () => {
  const tokens = parse(':0 {\n\tinternal /final\n}\n', 'Caddyfile', {
    directives: ['internal'],
  }).blocks[0].tokens.get('internal')!;
  const config = { address: { path: '' } } as unknown as SiteConfig;
  const options = internal.setup(new Dispenser(tokens), {} as never);
  const instance = internal.build!(options, config);
  const site: Site = { config, handler: compose([instance.middleware!], inner), label: 'test' };
  server = http.createServer(
    { ServerResponse: HookedResponse },
    (req, res) => void dispatch(site, req, res, { error() {} } as never),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test('a piped response with X-Accel-Redirect is discarded and the request served again', async () => {
  seen.length = 0;
  const r = await request(port, '/app?x=1');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'final body');
  assert.equal(r.headers['x-accel-redirect'], undefined);
  assert.equal(r.headers['content-encoding'], undefined);
  assert.deepEqual(seen, ['/app?x=1', '/final?x=1']);
});

test('the internal path itself is 404 from outside', async () => {
  seen.length = 0;
  const r = await request(port, '/final');
  assert.equal(r.status, 404);
  assert.deepEqual(seen, []);
});

test('more than 10 hops is a 500', async () => {
  seen.length = 0;
  const r = await request(port, '/loop');
  assert.equal(r.status, 500);
  assert.equal(r.body, '500 Internal Server Error\n');
  assert.equal(seen.length, 11);
  assert.equal(r.headers['x-accel-redirect'], undefined);
});
