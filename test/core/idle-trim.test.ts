// IdleTrim: a pool's kept things go once it has been unused for its idle time, and not while it is in use.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { IdleTrim } from '../../src/core/idle-trim.js';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
afterEach(() => mock.timers.reset());

test('drops after a full idle period without use; not while used; only when armed', () => {
  let drops = 0;
  const trim = new IdleTrim(1000, () => drops++);
  mock.timers.tick(5000);
  assert.equal(drops, 0, 'nothing kept, nothing checked');
  trim.used();
  trim.arm();
  mock.timers.tick(600);
  trim.used();
  mock.timers.tick(600);
  assert.equal(drops, 0, 'used 600 ms before the check');
  mock.timers.tick(1000);
  assert.equal(drops, 1, 'a whole period unused');
  mock.timers.tick(5000);
  assert.equal(drops, 1, 'disarmed once dropped');
  trim.arm();
  trim.arm();
  mock.timers.tick(1000);
  assert.equal(drops, 2, 'armed again, one timer');
});
