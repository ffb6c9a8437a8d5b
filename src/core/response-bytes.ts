// `{size}`: counts the body bytes a response writes into ctx.bytesWritten. Installed by whoever needs the
// number (log); wrappers installed later (gzip) write through this one, so the count is what went to the
// client after compression, as in Caddy v1 where log's recorder sits outside gzip.
import type { ServerResponse } from 'node:http';
import type { RequestContext } from './context.js';

const COUNTED = Symbol('nodecaddy.bytesCounted');

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string')
    return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/** Counts every body byte written through res.write/res.end into ctx.bytesWritten, once per response. */
export function countBytesWritten(ctx: RequestContext): void {
  const res = ctx.res as ServerResponse & { [COUNTED]?: true };
  if (res[COUNTED]) return;
  res[COUNTED] = true;
  // A HEAD response carries no body whatever the handler writes.
  if (ctx.req.method === 'HEAD') return;
  /* eslint-disable @typescript-eslint/unbound-method -- called with Reflect.apply on the same response */
  const write = res.write;
  const end = res.end;
  /* eslint-enable @typescript-eslint/unbound-method */
  res.write = function countedWrite(this: ServerResponse, ...args: unknown[]): boolean {
    ctx.bytesWritten += byteLength(args[0], args[1]);
    return Reflect.apply(write, this, args) as boolean;
  } as ServerResponse['write'];
  res.end = function countedEnd(this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (typeof args[0] !== 'function') ctx.bytesWritten += byteLength(args[0], args[1]);
    return Reflect.apply(end, this, args) as ServerResponse;
  } as ServerResponse['end'];
}
