// basicauth under attack: bcrypt off the event loop, the gate in front of it, failures per address.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { HttpError } from '../../src/core/errors.js';
import { CheckGate } from '../../src/middleware/basicauth/bcrypt.js';
import { hashCheck } from '../../src/middleware/basicauth/htpasswd.js';
import { addressKey, FailureThrottle, type ThrottleLimits } from '../../src/middleware/basicauth/throttle.js';

/** bcrypt of "secret", cost 12: a few hundred milliseconds of CPU per check. */
const COST_12 = '$2b$12$lTddZvCKEPcOtHEnlvPsbeaR9f5EFa2HYKqIp.SYT5.EmUREodapG';

/** CPU seconds (user + system) of this process's main thread, from /proc (clock ticks of 10 ms). */
function mainThreadCpu(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe('bcrypt checks', () => {
  test('run on other threads: the main thread spends a small part of the CPU they cost', async () => {
    const check = hashCheck(COST_12);
    assert.equal(await check('secret'), true);
    const process0 = process.cpuUsage();
    const main0 = mainThreadCpu();
    // Two at once: the gate runs two without queueing, so a busy machine cannot make them wait past its bound.
    const results = await Promise.all(Array.from({ length: 2 }, async (_, i) => check(`wrong${i}`)));
    const main = mainThreadCpu() - main0;
    const used = process.cpuUsage(process0);
    const total = (used.user + used.system) / 1e6;
    assert.deepEqual(results, [false, false]);
    assert.ok(total > 0.1, `two cost-12 checks cost CPU (${total} s)`);
    assert.ok(main < total / 4, `main thread ${main} s of ${total} s`);
  });
});

describe('CheckGate', () => {
  /** A task that finishes when the test says so. */
  function held(): { task: () => Promise<string>; finish: (v: string) => void; started: () => boolean } {
    let finish!: (v: string) => void;
    let started = false;
    const done = new Promise<string>((resolve) => (finish = resolve));
    return {
      task: () => {
        started = true;
        return done;
      },
      finish: (v) => finish(v),
      started: () => started,
    };
  }

  test('runs at most `running` tasks, the rest in arrival order', async () => {
    const gate = new CheckGate({ running: 2, waiting: 10, waitMs: 60_000 });
    const tasks = [held(), held(), held(), held()];
    const runs = tasks.map((t) => gate.run(t.task));
    await Promise.resolve();
    assert.deepEqual(
      tasks.map((t) => t.started()),
      [true, true, false, false],
    );
    assert.equal(gate.waitingCount, 2);
    tasks[1].finish('b');
    assert.equal(await runs[1], 'b');
    assert.deepEqual(
      tasks.map((t) => t.started()),
      [true, true, true, false],
    );
    tasks[0].finish('a');
    tasks[2].finish('c');
    await Promise.all([runs[0], runs[2]]);
    assert.equal(tasks[3].started(), true);
    tasks[3].finish('d');
    assert.deepEqual(await Promise.all(runs), ['a', 'b', 'c', 'd']);
    assert.equal(gate.runningCount, 0);
  });

  test('a full queue refuses at once with 503 and Retry-After', async () => {
    const gate = new CheckGate({ running: 1, waiting: 1, waitMs: 60_000 });
    const first = held();
    const second = held();
    const a = gate.run(first.task);
    const b = gate.run(second.task);
    await assert.rejects(gate.run(held().task), (err: unknown) => {
      assert.ok(err instanceof HttpError);
      assert.equal(err.status, 503);
      assert.equal(err.headers['Retry-After'], '2');
      return true;
    });
    first.finish('a');
    second.finish('b');
    assert.deepEqual(await Promise.all([a, b]), ['a', 'b']);
  });

  test('a task that waits too long is refused with 503; the slot stays usable', async () => {
    const gate = new CheckGate({ running: 1, waiting: 5, waitMs: 30 });
    const first = held();
    const a = gate.run(first.task);
    const late = held();
    await assert.rejects(
      gate.run(late.task),
      (err: unknown) => err instanceof HttpError && err.status === 503,
    );
    assert.equal(late.started(), false);
    assert.equal(gate.waitingCount, 0);
    first.finish('a');
    await a;
    assert.equal(await gate.run(async () => 'next'), 'next');
  });

  test('a task that throws frees its slot', async () => {
    const gate = new CheckGate({ running: 1, waiting: 1, waitMs: 60_000 });
    await assert.rejects(
      gate.run(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(gate.runningCount, 0);
    assert.equal(await gate.run(async () => 1), 1);
  });
});

describe('FailureThrottle', () => {
  const limits: ThrottleLimits = {
    freeFailures: 3,
    firstBlockMs: 1000,
    maxBlockMs: 8000,
    forgetMs: 60_000,
    maxPending: 2,
    maxAddresses: 3,
  };
  const fail = (t: FailureThrottle, a: string) => {
    assert.equal(t.admit(a), 0);
    t.done(a, 'failed');
  };

  test('free failures, then shut-outs that double up to the maximum; other addresses unaffected', () => {
    let now = 1_000_000;
    const t = new FailureThrottle(limits, () => now);
    for (let i = 0; i < 3; i++) fail(t, '192.0.2.1');
    fail(t, '192.0.2.1'); // the fourth: shut out for 1 s
    assert.equal(t.admit('192.0.2.1'), 1);
    assert.equal(t.admit('192.0.2.2'), 0, 'another address');
    t.done('192.0.2.2', 'failed');
    now += 1000;
    fail(t, '192.0.2.1'); // 2 s
    assert.equal(t.admit('192.0.2.1'), 2);
    now += 2000;
    fail(t, '192.0.2.1'); // 4 s
    now += 4000;
    fail(t, '192.0.2.1'); // 8 s
    now += 8000;
    fail(t, '192.0.2.1'); // still 8 s: the maximum
    assert.equal(t.admit('192.0.2.1'), 8);
  });

  test('a success clears the address; old failures are forgotten', () => {
    let now = 0;
    const t = new FailureThrottle(limits, () => now);
    for (let i = 0; i < 3; i++) fail(t, '192.0.2.1');
    assert.equal(t.admit('192.0.2.1'), 0);
    t.done('192.0.2.1', 'accepted');
    for (let i = 0; i < 3; i++) fail(t, '192.0.2.1');
    now += 60_001;
    fail(t, '192.0.2.1'); // would be the fourth, but the first three are forgotten
    assert.equal(t.admit('192.0.2.1'), 0);
    t.done('192.0.2.1', 'unchecked');
  });

  test('checks under way per address are capped; an unchecked outcome counts nothing', () => {
    const t = new FailureThrottle(limits);
    assert.equal(t.admit('192.0.2.1'), 0);
    assert.equal(t.admit('192.0.2.1'), 0);
    assert.equal(t.admit('192.0.2.1'), 1, 'a third at once waits');
    t.done('192.0.2.1', 'unchecked');
    t.done('192.0.2.1', 'unchecked');
    assert.equal(t.size, 0, 'nothing left to remember');
  });

  test('the table keeps at most maxAddresses, the least recently seen goes', () => {
    const t = new FailureThrottle(limits);
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) fail(t, a);
    assert.equal(t.size, 3);
  });

  test('IPv6 clients are counted per /64', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2');
    assert.equal(addressKey('2001:0DB8:0001:0002:bbbb:cccc:dddd:eeee'), '2001:db8:1:2');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0');
    assert.equal(addressKey('::1'), '0:0:0:0');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0');
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  });
});
