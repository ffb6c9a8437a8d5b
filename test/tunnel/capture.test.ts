// The inspector's capture store: what it keeps of bodies, and what it lets go (count, bytes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bodyBytes,
  CaptureStore,
  isCut,
  type CapturedBody,
  type CapturedExchange,
  type CaptureEvent,
} from '../../src/tunnel/inspector/capture.js';

function record(store: CaptureStore, path: string, body: Buffer[] = []): string {
  const rec = store.begin({ tunnel: 't', remoteAddr: '1.2.3.4', method: 'POST', path, headers: {} });
  for (const chunk of body) rec.requestData(chunk);
  rec.response(200, { 'content-type': 'text/plain' });
  rec.responseData(Buffer.from('ok'));
  rec.finish();
  return rec.id;
}

test('a body is kept up to the limit as copies; the rest is counted and marked cut', () => {
  const store = new CaptureStore({ bodyBytes: 10 });
  const big = Buffer.from('0123456789abcdef');
  const view = big.subarray(0, 6);
  const id = record(store, '/a', [view, big.subarray(6)]);
  const e = store.get(id)!;
  assert.equal(e.request.body.size, 16);
  assert.equal(bodyBytes(e.request.body).toString(), '0123456789');
  assert.ok(isCut(e.request.body));
  assert.ok(!isCut(e.response!.body));
  big.fill(0);
  assert.equal(bodyBytes(e.request.body).toString(), '0123456789', 'copies, not views of the stream buffers');
  assert.ok(e.durationMs !== undefined && e.durationMs >= 0);
});

test('the oldest exchanges go beyond the count and beyond the byte budget, with events', () => {
  const events: CaptureEvent[] = [];
  const store = new CaptureStore({ keep: 3, bodyBytes: 100, totalBytes: 250 });
  store.subscribe((e) => events.push(e));
  const ids = ['/1', '/2', '/3', '/4'].map((p) => record(store, p));
  assert.deepEqual(
    store.list().map((e) => e.request.path),
    ['/4', '/3', '/2'],
  );
  assert.ok(events.some((e) => e.kind === 'evict' && e.id === ids[0]));
  // Three bodies of 100 bytes pass the 250-byte budget: the oldest go until it fits.
  record(store, '/big1', [Buffer.alloc(100)]);
  record(store, '/big2', [Buffer.alloc(100)]);
  record(store, '/big3', [Buffer.alloc(100)]);
  assert.deepEqual(
    store.list().map((e) => e.request.path),
    ['/big3', '/big2'],
  );
  store.clear();
  assert.equal(store.size, 0);
  assert.equal(events[events.length - 1].kind, 'clear');
});

test('an exchange evicted while it runs keeps nothing more', () => {
  const store = new CaptureStore({ keep: 1, bodyBytes: 100, totalBytes: 1000 });
  const rec = store.begin({ tunnel: 't', remoteAddr: '', method: 'GET', path: '/slow', headers: {} });
  record(store, '/next');
  rec.requestData(Buffer.alloc(50));
  rec.finish();
  assert.equal(store.get(rec.id), undefined);
  record(store, '/after', [Buffer.alloc(100)]);
  assert.equal(store.list()[0].request.body.kept, 100, 'the budget was not charged for the evicted one');
});

test('a finished exchange reads back as it was recorded: fields, header maps, bodies', () => {
  const store = new CaptureStore();
  const live: CaptureEvent[] = [];
  store.subscribe((e) => live.push(e));
  const headers = Object.create(null) as Record<string, string>;
  headers['__proto__'] = 'x';
  headers.host = 'é.test';
  const rec = store.begin({
    tunnel: 'tü',
    remoteAddr: '::1',
    method: 'PUT',
    path: '/ä?q=1',
    headers,
    replayOf: 'r1',
  });
  rec.requestData(Buffer.from('one,'));
  rec.requestData(Buffer.from('two'));
  // Null-prototype maps, as the parsers make them.
  rec.response(
    201,
    Object.assign(Object.create(null) as object, { 'set-cookie': ['a=1', 'b=2'], 'content-length': '2' }),
  );
  rec.responseData(Buffer.from([0, 255]));
  rec.finish('cancelled');
  const update = live.at(-1);
  assert.ok(update?.kind === 'update');
  const before = update.exchange;
  const after = store.get(rec.id)!;
  // The same but for how the body bytes are split in parts.
  assert.deepEqual(flat(after), flat(before));
  assert.equal(Object.getPrototypeOf(after.request.headers), null);
  assert.equal(after.request.headers['__proto__'], 'x');
  assert.equal(bodyBytes(after.request.body).toString(), 'one,two');
  assert.deepEqual([...bodyBytes(after.response!.body)], [0, 255]);
  assert.equal(after.start.getTime(), before.start.getTime());
  assert.deepEqual(store.list(), [after]);

  const failed = store.begin({ tunnel: 't', remoteAddr: '', method: 'GET', path: '/', headers: {} });
  failed.finish('connection refused');
  const e = store.get(failed.id)!;
  assert.equal(e.response, undefined);
  assert.equal(e.error, 'connection refused');
  assert.equal(e.upgrade, undefined);
  assert.equal(e.replayOf, undefined);
  assert.equal(store.get('0000000000000099'), undefined);
  assert.equal(store.get('nonsense'), undefined);
});

function flat(e: CapturedExchange): unknown {
  const body = (b: CapturedBody) => ({ bytes: bodyBytes(b), kept: b.kept, size: b.size });
  return {
    ...e,
    request: { ...e.request, body: body(e.request.body) },
    response: e.response && { ...e.response, body: body(e.response.body) },
  };
}

test('packed exchanges share reused memory and never read back another one', () => {
  const store = new CaptureStore({ keep: 50 });
  const ids: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const rec = store.begin({
      tunnel: 't',
      remoteAddr: '',
      method: 'GET',
      path: `/${i}`,
      headers: { n: String(i) },
    });
    rec.response(200, { n: String(i) });
    rec.responseData(Buffer.from(`body ${i} `.repeat(1 + (i % 40))));
    rec.finish();
    ids.push(rec.id);
    if (i === 2500) store.clear();
  }
  const kept = store.list();
  assert.equal(kept.length, 50);
  for (const [k, e] of kept.entries()) {
    const i = 4999 - k;
    assert.equal(e.id, ids[i]);
    assert.equal(e.request.path, `/${i}`);
    assert.equal(e.response!.headers.n, String(i));
    assert.equal(bodyBytes(e.response!.body).toString(), `body ${i} `.repeat(1 + (i % 40)));
  }
  // What was read stays as read while the store packs more in the memory it gave back.
  const read = store.get(ids[4950])!;
  for (let i = 0; i < 500; i++) record(store, '/more', [Buffer.alloc(300, 0x78)]);
  assert.equal(bodyBytes(read.response!.body).toString(), `body 4950 `.repeat(1 + (4950 % 40)));
  // Memory of its own for a large one.
  const big = record(store, '/big', [Buffer.alloc(20000, 0x79)]);
  assert.equal(bodyBytes(store.get(big)!.request.body).toString(), 'y'.repeat(20000));
});
