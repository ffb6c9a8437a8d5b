// Replay: a captured request sent again, straight to the local target (as ngrok's agent does), captured as
// a new exchange linked to its original. "Edit and replay" changes the method, path, headers or body first.
import http from '../../core/node-http.js';
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpTarget } from '../forward-http.js';
import { bodyBytes, isCut, type CaptureStore, type CapturedExchange } from './capture.js';

export interface ReplayEdits {
  method?: string;
  /** Request target, `/path?query`. */
  uri?: string;
  /** Replaces all the headers (names case-insensitive; a value or a list). */
  headers?: Record<string, string | string[]>;
  body?: Buffer;
}

/** Why a replay cannot be made, with the HTTP status the API answers. */
export class ReplayError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function replayHeaders(edits: ReplayEdits, original: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (!edits.headers) return { ...original };
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(edits.headers)) {
    const lower = name.trim().toLowerCase();
    if (!TOKEN.test(lower)) throw new ReplayError(400, `'${name}' is not a header name`);
    const values = (Array.isArray(value) ? value : [value]).map(String);
    if (values.some((v) => /[\r\n\0]/.test(v)))
      throw new ReplayError(400, `the value of ${name} has a line break`);
    out[lower] = values.length === 1 ? values[0] : values;
  }
  return out;
}

/** Starts the replay; returns the new exchange's id (its answer arrives in the store). */
export function replay(
  original: CapturedExchange,
  edits: ReplayEdits,
  target: HttpTarget,
  capture: CaptureStore,
): string {
  if (original.upgrade) throw new ReplayError(409, `a ${original.upgrade} upgrade cannot be replayed`);
  let body = edits.body;
  if (!body) {
    if (isCut(original.request.body)) {
      throw new ReplayError(
        409,
        `only the first ${original.request.body.kept} of ${original.request.body.size} body bytes were kept: ` +
          'replay needs the whole body (edit it, or raise the limit)',
      );
    }
    body = bodyBytes(original.request.body);
  }
  const method = (edits.method ?? original.request.method).toUpperCase();
  if (!TOKEN.test(method)) throw new ReplayError(400, `'${method}' is not a method`);
  const path = edits.uri ?? original.request.path;
  if (!path.startsWith('/') || /[\s\0]/.test(path))
    throw new ReplayError(400, `'${path}' is not a request target`);
  const headers = replayHeaders(edits, original.request.headers);
  delete headers['transfer-encoding'];
  if (body.length > 0 || headers['content-length'] !== undefined)
    headers['content-length'] = String(body.length);

  const rec = capture.begin({
    tunnel: original.tunnel,
    remoteAddr: original.remoteAddr,
    method,
    path,
    headers,
    replayOf: original.id,
  });
  const req = http.request({
    host: target.host,
    port: target.port,
    method,
    path,
    headers,
    // A connection of its own: a replay is rare, and must not wait for the tunnel's.
    agent: false,
  });
  req.on('error', (err: NodeJS.ErrnoException) =>
    rec.finish(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message),
  );
  req.on('response', (res) => {
    rec.response(res.statusCode ?? 0, res.headers);
    res.on('data', (chunk: Buffer) => rec.responseData(chunk));
    res.on('end', () => rec.finish());
    res.on('error', (err) => rec.finish(err.message));
  });
  if (body.length > 0) rec.requestData(body);
  req.end(body);
  return rec.id;
}
