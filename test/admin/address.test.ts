// -admin values and the Host / Origin values the endpoint accepts (DNS rebinding, cross-site requests).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowedHosts, originHost, parseAdminAddress } from '../../src/admin/address.js';

describe('-admin', () => {
  test('loopback unless another address is given; off; errors say what is expected', () => {
    assert.deepEqual(parseAdminAddress('localhost:2019'), {
      host: '127.0.0.1',
      port: 2019,
      display: 'localhost:2019',
    });
    assert.deepEqual(parseAdminAddress(':2019'), {
      host: '127.0.0.1',
      port: 2019,
      display: 'localhost:2019',
    });
    assert.deepEqual(parseAdminAddress('0.0.0.0:9000'), {
      host: '0.0.0.0',
      port: 9000,
      display: '0.0.0.0:9000',
    });
    assert.deepEqual(parseAdminAddress('[::1]:2019'), { host: '::1', port: 2019, display: '[::1]:2019' });
    assert.equal(parseAdminAddress('off'), undefined);
    for (const bad of ['2019', 'localhost', 'localhost:99999', '[nope]:1', 'a:b', '']) {
      assert.throws(() => parseAdminAddress(bad), /for flag -admin: /, bad);
    }
  });

  test('Host values: the loopback names with the port, or the address as given', () => {
    assert.deepEqual([...allowedHosts(parseAdminAddress('localhost:0')!, 4242)].sort(), [
      '127.0.0.1:4242',
      '[::1]:4242',
      'localhost:4242',
    ]);
    assert.deepEqual([...allowedHosts(parseAdminAddress('10.1.2.3:2019')!, 2019)], ['10.1.2.3:2019']);
  });

  test("an Origin's host and port, default ports filled in; anything else unreadable", () => {
    assert.equal(originHost('http://localhost:2019'), 'localhost:2019');
    assert.equal(originHost('http://EVIL.example'), 'evil.example:80');
    assert.equal(originHost('https://[::1]'), '[::1]:443');
    assert.equal(originHost('null'), undefined);
    assert.equal(originHost('file:///etc'), undefined);
  });
});
