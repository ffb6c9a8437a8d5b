// The request body as directives that forward it (proxy, fastcgi, tunnel) must read it: through the
// `limits` body size, so an oversized upload becomes a 413 wherever it is read.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { RequestContext } from './context.js';
import { HttpError } from './errors.js';
import { declaresBody } from './unread-body.js';

/**
 * The body stream to read. With no limit it is the request itself (no copy). With a limit, a Content-Length
 * over it throws HttpError(413) at once, and a chunked body that grows past it errors the stream with one.
 */
export function requestBody(ctx: RequestContext): Readable {
  const limit = ctx.maxBodyBytes;
  if (!Number.isFinite(limit)) return ctx.req;
  refuseDeclaredOversize(ctx);
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > limit) done(new HttpError(413, 'request body too large'));
      else done(null, chunk);
    },
  });
  ctx.req.on('error', (err) => counter.destroy(err));
  return ctx.req.pipe(counter);
}

/**
 * A Content-Length over the `limits` body size is a 413 at once (the connection then closes rather than
 * drain it). Called where the chain ends (the file server) and by requestBody(), so that `errors` and `log`,
 * which run inside `limits`, see the 413 like any other error.
 */
export function refuseDeclaredOversize(ctx: RequestContext): void {
  const declared = Number(ctx.req.headers['content-length']);
  if (declared > ctx.maxBodyBytes) {
    throw new HttpError(413, 'request body too large', { headers: { Connection: 'close' } });
  }
}

/** Does the request carry a body at all (so a retry could not replay it)? */
export function hasRequestBody(ctx: RequestContext): boolean {
  return declaresBody(ctx.req.headers);
}
