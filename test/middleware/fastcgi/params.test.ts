// The parameter list: the order and the overrides a Map gave (built-ins, then user variables, then headers).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ParamList } from '../../../src/middleware/fastcgi/params.js';
import {
  decodePairs,
  encodeRequest,
  RecordParser,
  RecordType,
} from '../../../src/middleware/fastcgi/protocol.js';

function pairs(list: ParamList): [string, string][] {
  return list.names.map((n, i) => [n, list.values[i]]);
}

describe('FastCGI parameter list', () => {
  test('a name set again keeps its place and takes the new value, as in a Map', () => {
    const list = new ParamList();
    const map = new Map<string, string>();
    const built: [string, string][] = [
      ['SCRIPT_NAME', '/index.php'],
      ['HTTP_HOST', 'a.example'],
      ['REQUEST_URI', '/'],
    ];
    for (const [n, v] of built) {
      list.add(n, v);
      map.set(n, v);
    }
    const env: [string, string][] = [
      ['SCRIPT_NAME', '/app.php'],
      ['HTTP_X_FROM_ENV', 'env'],
      ['APP_ENV', 'prod'],
    ];
    for (const [n, v] of env) {
      list.set(n, v);
      map.set(n, v);
    }
    // `X-A` and `X_A` are both HTTP_X_A; a header also overrides HTTP_HOST and a user variable named HTTP_*.
    const headers: [string, string][] = [
      ['HTTP_X_A', 'dash'],
      ['HTTP_HOST', 'b.example'],
      ['HTTP_X_FROM_ENV', 'header'],
      ['HTTP_X_A', 'underscore'],
      ['HTTP_ACCEPT', '*/*'],
    ];
    for (const [n, v] of headers) {
      list.setHeader(n, v);
      map.set(n, v);
    }
    assert.deepEqual(pairs(list), [...map]);
  });

  test('encodes the same bytes as the same pairs given as tuples', () => {
    const list = new ParamList();
    list.add('A', 'b');
    list.add('LONG', 'x'.repeat(70000));
    list.setHeader('HTTP_C', 'd');
    const fromList = encodeRequest(1, list, true);
    assert.deepEqual(fromList, encodeRequest(1, pairs(list), true));
    const params: [string, string][] = [];
    new RecordParser().push(fromList, (r) => {
      if (r.type === (RecordType.Params as number) && r.content.length > 0)
        params.push(...decodePairs(r.content));
    });
    // A value too long for one record is cut to what fits (lengths of 1 and 4 bytes, the name).
    assert.deepEqual(
      params.map(([n, v]) => [n, v.length]),
      [
        ['A', 1],
        ['LONG', 65535 - 8 - (1 + 4 + 4)],
        ['HTTP_C', 1],
      ],
    );
  });
});
