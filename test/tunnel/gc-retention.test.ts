// What the tunnel client keeps per request must not outlive the request for V8's scavenges. A Map that lives
// as long as the link (or the inspector) and churns entries leaves replaced hash tables in the old
// generation that still point at their entries: everything those reach is promoted and lingers until a full
// collection (under load: ~3 KB per request, a full collection every few hundred ms). These tests churn
// entries through only minor collections and watch the old generation: it grows by what was promoted.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { CaptureStore } from '../../src/tunnel/inspector/capture.js';
import type { Endpoint } from '../../src/tunnel/mux.js';
import { muxPair, muxServer, type MuxServer } from './mux-pair.js';

type Collect = (options?: { type: 'major' | 'minor' }) => void;

/** Node's gc, exposed in this process only for these tests (a fresh context picks up the flag). */
function exposedGc(): Collect {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as Collect;
}

function oldSpaceUsed(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
}

/**
 * MB the old generation grew by while `churn` ran five times, each followed by a minor collection. A full
 * collection first puts the long-lived structure into the old generation, as under load.
 */
function promotedBy(churn: () => void): number {
  const gc = exposedGc();
  gc();
  const before = oldSpaceUsed();
  for (let round = 0; round < 5; round++) {
    churn();
    gc({ type: 'minor' });
  }
  return (oldSpaceUsed() - before) / 1048576;
}

/** ~1 KB that only the request holds. */
function requestObjects(i: number): number[] {
  return new Array<number>(100).fill(i);
}

let server: MuxServer;
before(async () => {
  server = await muxServer();
});
after(() => server.close());

test('streams the mux forgot are not promoted by its stream table', async () => {
  const pair = await muxPair(server);
  try {
    const mux = pair.acceptor;
    let id = 2;
    // Streams in flight when the full collection runs, as under load.
    for (let i = 0; i < 50; i++) mux.attach((id += 2), endpointOf(requestObjects(i)));
    const grew = promotedBy(() => {
      for (let i = 0; i < 2000; i++) {
        mux.attach((id += 2), endpointOf(requestObjects(i)));
        mux.forget(id - 100);
      }
    });
    // 10,000 streams of ~1 KB went through; a Map promoted ~3.5 MB of them.
    assert.ok(grew < 1, `the old generation grew by ${grew.toFixed(2)} MB`);
    assert.equal(mux.streamCount, 50);
  } finally {
    pair.close();
  }
});

test('exchanges the inspector let go are not promoted by its store', () => {
  const store = new CaptureStore({ keep: 50 });
  const exchange = (i: number) => {
    const rec = store.begin({
      tunnel: 't',
      remoteAddr: '',
      method: 'GET',
      path: '/',
      headers: { n: String(i) },
    });
    rec.response(200, { pad: requestObjects(i).map(String) });
    rec.finish();
  };
  for (let i = 0; i < 60; i++) exchange(i);
  const grew = promotedBy(() => {
    for (let i = 0; i < 2000; i++) exchange(i);
  });
  // A Map of the kept exchanges promoted ~8 MB of them.
  assert.ok(grew < 1, `the old generation grew by ${grew.toFixed(2)} MB`);
  assert.equal(store.size, 50);
});

test('a finished exchange the inspector keeps is one small object on the heap', () => {
  // KB the old generation grew by for 500 exchanges through a store that keeps `keep` of them.
  const grewWith = (keep: number): number => {
    const store = new CaptureStore({ keep });
    const gc = exposedGc();
    gc();
    const before = oldSpaceUsed();
    for (let i = 0; i < 500; i++) {
      const rec = store.begin({
        tunnel: 't',
        remoteAddr: '127.0.0.1',
        method: 'GET',
        path: `/page/${i}`,
        headers: { host: 'example.test', 'user-agent': `agent ${i}`, accept: '*/*' },
      });
      rec.response(200, { 'content-type': 'text/plain', 'content-length': String(i), date: `day ${i}` });
      rec.responseData(Buffer.from(`hello ${i}`));
      rec.finish();
    }
    // Two scavenges promote whatever the store still holds on the heap.
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    assert.equal(store.size, keep);
    return (oldSpaceUsed() - before) / 1024;
  };
  // Against a store that keeps one, so that what the rest of the process promoted meanwhile counts less.
  const cost = grewWith(500) - grewWith(1);
  // As objects (entry, header maps, strings, Date, body copy) they were 1.3-1.8 KB each; packed ~150 bytes.
  assert.ok(cost < 300, `499 more kept exchanges take ${cost.toFixed(0)} KB more of the old generation`);
});

function endpointOf(request: number[]): Endpoint {
  return {
    frame: () => request.length,
    lost: () => request.length,
  };
}
