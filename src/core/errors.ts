// HttpError means "nothing written yet": whoever catches it (errors directive or the default) renders the page.
import { STATUS_CODES } from './node-http.js';
import type { HttpResponse } from './response.js';
import { closeIfBodyUnread } from './unread-body.js';

export class HttpError extends Error {
  readonly status: number;
  /** Extra response headers that belong to the error (e.g. Allow on 405, WWW-Authenticate on 401). */
  readonly headers: Readonly<Record<string, string>>;
  /** The underlying reason, for logs; never shown to clients unless the site asks (errors visible). */
  override readonly cause: unknown;
  /** One line that is safe to show the client under the status line (e.g. "no tunnel client is connected"). */
  readonly detail: string | undefined;
  /** The directive has said in the log what there is to say (an expected condition, not a fault). */
  readonly logged: boolean;

  constructor(
    status: number,
    message?: string,
    opts: { headers?: Record<string, string>; cause?: unknown; detail?: string; logged?: boolean } = {},
  ) {
    // An HttpError is control flow (a 404 is not a bug): skip the stack trace, which costs more than the response.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? `${status} ${STATUS_CODES[status] ?? 'Error'}`);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'HttpError';
    this.status = status;
    this.headers = opts.headers ?? {};
    this.cause = opts.cause;
    this.detail = opts.detail;
    this.logged = opts.logged ?? false;
  }
}

/** Entity headers of a failed response that must not describe the error page written in its place. */
export const ENTITY_HEADERS: readonly string[] = [
  'content-length',
  'content-encoding',
  'content-range',
  'content-type',
  'etag',
  'last-modified',
];

/** Caddy's DefaultErrorFunc: "<code> <StatusText>\n" as plain text, nosniff. */
export function writeDefaultError(
  res: HttpResponse,
  status: number,
  headers: Readonly<Record<string, string>> = {},
  detail?: string,
): void {
  if (res.headersSent) {
    // Too late for a page: cut the connection so the client cannot mistake a truncated body for a whole one.
    res.destroy();
    return;
  }
  const body = `${status} ${STATUS_CODES[status] ?? 'Error'}\n${detail ? `${detail}\n` : ''}`;
  // Headers set by outer middleware (e.g. `header`) stay, as in Caddy; entity headers of the failed body go.
  for (const name of ENTITY_HEADERS) if (res.hasHeader(name)) res.removeHeader(name);
  res.statusCode = status;
  for (const k in headers) res.setHeader(k, headers[k]);
  closeIfBodyUnread(res);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}
