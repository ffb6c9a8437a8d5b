// A finished exchange packed into one buffer: its fields as JSON, then its kept body bytes. Why: the store
// keeps the last 500 exchanges, ~50 ms under load, and as objects (the entry, its headers maps, strings, a
// Date, body copies: ~1.8 KB each) they survive every scavenge of that time: V8 copies them once or twice,
// grows the young generation for them (the client's RSS after a load of small answers was 91 MB instead of
// 75), and where scavenges come faster than they die (Node 26's young generation at our 4 MB cap) promotes
// them, which brings a full collection every ~0.5 s. A buffer is one small object on the heap, its bytes
// outside it (arena.ts). Only an exchange that is read (the API, the page, a replay) is unpacked, into fresh objects.
//
// Layout: [id length: u8][id: latin1][request body bytes: u32][response body bytes: u32][JSON bytes: u32]
// [JSON][request body][response body].
import type { OutgoingHttpHeaders } from 'node:http';
import type { ByteArena } from './arena.js';
import type { CapturedBody, CapturedExchange } from './capture.js';

type Fields = [
  tunnel: string,
  remoteAddr: string,
  startMs: number,
  durationMs: number | null,
  method: string,
  path: string,
  requestHeaders: OutgoingHttpHeaders,
  requestSize: number,
  status: number | null,
  responseHeaders: OutgoingHttpHeaders | null,
  responseSize: number,
  upgrade: string | null,
  error: string | null,
  replayOf: string | null,
];

/** Packed in memory of `arena`, to be freed there when the store lets the exchange go. */
export function pack(e: CapturedExchange, arena: ByteArena): Buffer {
  const req = e.request;
  const res = e.response;
  const fields: Fields = [
    e.tunnel,
    e.remoteAddr,
    e.start.getTime(),
    e.durationMs ?? null,
    req.method,
    req.path,
    req.headers,
    req.body.size,
    res?.status ?? null,
    res?.headers ?? null,
    res?.body.size ?? 0,
    e.upgrade ?? null,
    e.error ?? null,
    e.replayOf ?? null,
  ];
  const json = JSON.stringify(fields);
  const jsonBytes = Buffer.byteLength(json);
  const resKept = res?.body.kept ?? 0;
  const buf = arena.alloc(1 + e.id.length + 12 + jsonBytes + req.body.kept + resKept);
  buf[0] = e.id.length;
  let at = 1 + buf.write(e.id, 1, 'latin1');
  at = buf.writeUInt32LE(req.body.kept, at);
  at = buf.writeUInt32LE(resKept, at);
  at = buf.writeUInt32LE(jsonBytes, at);
  at += buf.write(json, at, 'utf8');
  for (const part of req.body.parts) at += part.copy(buf, at);
  for (const part of res?.body.parts ?? []) at += part.copy(buf, at);
  return buf;
}

export function packedId(buf: Buffer): string {
  return buf.toString('latin1', 1, 1 + buf[0]);
}

/** Body bytes kept in it, as the store's budget counts them. */
export function packedBodyBytes(buf: Buffer): number {
  const at = 1 + buf[0];
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4);
}

export function unpack(buf: Buffer): CapturedExchange {
  let at = 1 + buf[0];
  const reqKept = buf.readUInt32LE(at);
  const resKept = buf.readUInt32LE(at + 4);
  const jsonBytes = buf.readUInt32LE(at + 8);
  at += 12;
  const f = JSON.parse(buf.toString('utf8', at, at + jsonBytes)) as Fields;
  at += jsonBytes;
  const body = (kept: number, size: number): CapturedBody => {
    // A copy: the arena reuses the packed bytes once the store lets the exchange go.
    const parts = kept > 0 ? [Buffer.from(buf.subarray(at, at + kept))] : [];
    at += kept;
    return { parts, kept, size };
  };
  const requestBody = body(reqKept, f[7]);
  return {
    id: packedId(buf),
    tunnel: f[0],
    remoteAddr: f[1],
    start: new Date(f[2]),
    durationMs: f[3] ?? undefined,
    request: { method: f[4], path: f[5], headers: fieldMap(f[6]), body: requestBody },
    response:
      f[8] === null ? undefined : { status: f[8], headers: fieldMap(f[9] ?? {}), body: body(resKept, f[10]) },
    upgrade: f[11] ?? undefined,
    error: f[12] ?? undefined,
    replayOf: f[13] ?? undefined,
  };
}

/** Without a prototype, as the maps it was packed from: a `__proto__` or `constructor` field is just a field. */
function fieldMap(parsed: OutgoingHttpHeaders): OutgoingHttpHeaders {
  return Object.assign(Object.create(null) as OutgoingHttpHeaders, parsed);
}
