// Hooks on a response's header moment. Several directives must act just before the status line and headers
// go out, whoever writes them (static, proxy, fastcgi, tunnel): `header` re-applies deletions, `gzip`
// decides whether to compress, `log` records the status. Node funnels every path (explicit writeHead, the
// implicit header of the first write() or end(), flushHeaders) through writeHead, so we wrap it once per
// response and run the hooks in the order they were added (outermost directive first).
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

type Hook = (res: ServerResponse) => void;

const HOOKS = Symbol('nodecaddy.writeHeadHooks');

interface Hooked extends ServerResponse {
  [HOOKS]?: Hook[];
}

/**
 * Runs `hook` right before the response's headers are sent, once. Headers passed to writeHead(status,
 * headers) are moved into setHeader first, so hooks see (and may change) every header.
 */
export function beforeWriteHead(res: ServerResponse, hook: Hook): void {
  const r = res as Hooked;
  const existing = r[HOOKS];
  if (existing) {
    existing.push(hook);
    return;
  }
  const hooks: Hook[] = [hook];
  r[HOOKS] = hooks;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply on the same response
  const original = res.writeHead;
  let ran = false;
  res.writeHead = function writeHead(this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (ran) return Reflect.apply(original, this, args) as ServerResponse;
    ran = true;
    const [status, reasonOrHeaders, maybeHeaders] = args as [
      number,
      string | OutgoingHttpHeaders | (string | string[])[] | undefined,
      OutgoingHttpHeaders | (string | string[])[] | undefined,
    ];
    const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : undefined;
    const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    if (headers) moveIntoSetHeader(this, headers);
    this.statusCode = status;
    if (reason !== undefined) this.statusMessage = reason;
    for (const h of hooks) h(this);
    return Reflect.apply(original, this, [
      this.statusCode,
      this.statusMessage || undefined,
    ]) as ServerResponse;
  };
}

function moveIntoSetHeader(res: ServerResponse, headers: OutgoingHttpHeaders | (string | string[])[]): void {
  if (Array.isArray(headers)) {
    // Flat [name, value, name, value, …] or [[name, value], …] as Node accepts.
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown as [string, string][]) appendHeader(res, pair[0], pair[1]);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) appendHeader(res, headers[i] as string, headers[i + 1]);
    }
    return;
  }
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) res.setHeader(name, value);
  }
}

function appendHeader(res: ServerResponse, name: string, value: string | string[]): void {
  const prev = res.getHeader(name);
  if (prev === undefined) res.setHeader(name, value);
  else
    res.setHeader(name, [
      ...(Array.isArray(prev) ? prev : [String(prev)]),
      ...(Array.isArray(value) ? value : [value]),
    ]);
}
