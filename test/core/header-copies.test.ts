// Copies of header maps (proxy and tunnel) keep fields named after inherited properties as fields.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { withoutHopByHop } from '../../src/core/forwarded.js';
import { requestOf, requestWire, responseOf, responseWire } from '../../src/tunnel/headers.js';

/** Headers as HTTP/2 and the proxy's parser hand them over: no prototype, so `__proto__` can be a field. */
function fields(entries: [string, string | string[]][]): IncomingHttpHeaders {
  const out = Object.create(null) as IncomingHttpHeaders;
  for (const [k, v] of entries) out[k] = v;
  return out;
}

const input = () =>
  fields([
    ['__proto__', ['a', 'b']],
    ['constructor', 'c'],
    ['connection', 'close'],
    ['x-kept', 'yes'],
  ]);

for (const [name, copy] of [
  ['withoutHopByHop', (h: IncomingHttpHeaders) => withoutHopByHop(h)],
  // Across the tunnel, through JSON as on the wire.
  [
    'a tunnel request head',
    (h: IncomingHttpHeaders) =>
      requestOf(
        JSON.parse(JSON.stringify(requestWire({ method: 'GET', path: '/', authority: 'x', headers: h }))),
      ).headers,
  ],
  [
    'a tunnel response head',
    (h: IncomingHttpHeaders) => responseOf(JSON.parse(JSON.stringify(responseWire(200, h)))).headers,
  ],
] as const) {
  test(`${name}: __proto__ and constructor are copied as fields`, () => {
    const out = copy(input());
    assert.ok(Object.hasOwn(out, '__proto__'), 'an own __proto__ field');
    assert.deepEqual(out['__proto__'], ['a', 'b']);
    assert.equal(out['constructor'], 'c');
    assert.equal(out['x-kept'], 'yes');
    assert.equal(Object.getPrototypeOf(out), null);
  });
}
