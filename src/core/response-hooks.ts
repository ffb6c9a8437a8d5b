// Hooks on a response's header moment. Several directives must act just before the status line and headers
// go out, whoever writes them (static, proxy, fastcgi, tunnel): `header` re-applies deletions, `gzip`
// decides whether to compress, `log` records the status. Node funnels every path (explicit writeHead, the
// implicit header of the first write() or end(), flushHeaders) through writeHead, so the hooks run there, in
// the order they were added (outermost directive first).
//
// Our servers make their responses as HookedResponse, whose writeHead looks the hooks up in a WeakMap. An
// earlier version gave every response its own writeHead closure and a symbol property: under load V8 then
// kept promoting short-lived per-request objects to the old generation (scavenges 20x longer, a full GC
// every ~300 ms, ~40 MB more heap and a third of the throughput with gzip on). A response made elsewhere
// (a plain node:http server) gets the same shared function as an own property.
import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';

type Hook = (res: ServerResponse) => void;

/** Hooks per response; RAN once they ran (later hooks are ignored: the headers are out). */
const hooksOf = new WeakMap<ServerResponse, Hook[]>();
const RAN: Hook[] = [];

const nodeWriteHead = ServerResponse.prototype.writeHead; // eslint-disable-line @typescript-eslint/unbound-method

function writeHeadWithHooks(this: ServerResponse, ...args: unknown[]): ServerResponse {
  const hooks = hooksOf.get(this);
  if (hooks === undefined || hooks === RAN) return Reflect.apply(nodeWriteHead, this, args) as ServerResponse;
  hooksOf.set(this, RAN);
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
  return Reflect.apply(nodeWriteHead, this, [
    this.statusCode,
    this.statusMessage || undefined,
  ]) as ServerResponse;
}

/** The response class of nodecaddy's servers (`http.createServer({ ServerResponse: HookedResponse })`). */
export class HookedResponse<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {}
HookedResponse.prototype.writeHead = writeHeadWithHooks as ServerResponse['writeHead'];

/**
 * Runs `hook` right before the response's headers are sent, once. Headers passed to writeHead(status,
 * headers) are moved into setHeader first, so hooks see (and may change) every header.
 */
export function beforeWriteHead(res: ServerResponse, hook: Hook): void {
  const existing = hooksOf.get(res);
  if (existing === RAN) return;
  if (existing) {
    existing.push(hook);
    return;
  }
  hooksOf.set(res, [hook]);
  if (!(res instanceof HookedResponse)) res.writeHead = writeHeadWithHooks;
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
