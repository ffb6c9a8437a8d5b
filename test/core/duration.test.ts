import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatDuration,
  formatDurationNanos,
  parseDuration,
  parseDurationNanos,
} from '../../src/core/duration.js';

const NS = 1n;
const US = 1000n * NS;
const MS = 1000n * US;
const S = 1000n * MS;
const M = 60n * S;
const H = 60n * M;
const MIN_INT64 = -(1n << 63n);
const MAX_INT64 = (1n << 63n) - 1n;

// Go's time_test.go parseDurationTests.
const parseCases: Array<[string, bigint]> = [
  // simple
  ['0', 0n],
  ['5s', 5n * S],
  ['30s', 30n * S],
  ['1478s', 1478n * S],
  // sign
  ['-5s', -5n * S],
  ['+5s', 5n * S],
  ['-0', 0n],
  ['+0', 0n],
  // decimal
  ['5.0s', 5n * S],
  ['5.6s', 5n * S + 600n * MS],
  ['5.s', 5n * S],
  ['.5s', 500n * MS],
  ['1.0s', 1n * S],
  ['1.00s', 1n * S],
  ['1.004s', 1n * S + 4n * MS],
  ['1.0040s', 1n * S + 4n * MS],
  ['100.00100s', 100n * S + 1n * MS],
  // different units
  ['10ns', 10n * NS],
  ['11us', 11n * US],
  ['12\u00b5s', 12n * US], // U+00B5
  ['12\u03bcs', 12n * US], // U+03BC
  ['13ms', 13n * MS],
  ['14s', 14n * S],
  ['15m', 15n * M],
  ['16h', 16n * H],
  // composite durations
  ['3h30m', 3n * H + 30n * M],
  ['10.5s4m', 4n * M + 10n * S + 500n * MS],
  ['-2m3.4s', -(2n * M + 3n * S + 400n * MS)],
  ['1h2m3s4ms5us6ns', 1n * H + 2n * M + 3n * S + 4n * MS + 5n * US + 6n * NS],
  ['39h9m14.425s', 39n * H + 9n * M + 14n * S + 425n * MS],
  // large value
  ['52763797000ns', 52763797000n * NS],
  // more than 9 digits after decimal point, see https://golang.org/issue/6617
  ['0.3333333333333333333h', 20n * M],
  // 9007199254740993 = 1<<53+1 cannot be stored precisely in a float64
  ['9007199254740993ns', ((1n << 53n) + 1n) * NS],
  // largest duration that can be represented by int64 in nanoseconds
  ['9223372036854775807ns', MAX_INT64],
  ['9223372036854775.807us', MAX_INT64],
  ['9223372036s854ms775us807ns', MAX_INT64],
  ['-9223372036854775808ns', MIN_INT64],
  ['-9223372036854775.808us', MIN_INT64],
  ['-9223372036s854ms775us808ns', MIN_INT64],
  // largest negative round trip value, see https://golang.org/issue/48629
  ['-2562047h47m16.854775808s', MIN_INT64],
  // huge string; issue 15011.
  ['0.100000000000000000000h', 6n * M],
  // This value tests the first overflow check in leadingFraction.
  ['0.830103483285477580700h', 49n * M + 48n * S + 372539827n * NS],
];

const errorCases = [
  '',
  '3',
  '-',
  's',
  '.',
  '-.',
  '.s',
  '+.s',
  '1d',
  '\x85\x85',
  '\xffff',
  'hello \xffff world',
  '\uFFFD',
  '\uFFFD hello \uFFFD world',
  // overflow
  '9223372036854775810ns',
  '9223372036854775808ns',
  '-9223372036854775809ns',
  '9223372036854776us',
  '3000000h',
  '9223372036854775.808us',
  '9223372036854ms775us808ns',
  // ours
  '1h 30m',
  ' 1s',
  '1s ',
  '1..5s',
  '--1s',
  '1S',
  '1sec',
];

test('parseDurationNanos: Go ParseDuration table', () => {
  for (const [text, want] of parseCases) {
    assert.equal(parseDurationNanos(text), want, text);
  }
});

test('parseDuration rejects what Go rejects, naming the input', () => {
  for (const text of errorCases) {
    assert.throws(
      () => parseDuration(text),
      (err: unknown) => err instanceof Error && err.message === `invalid duration "${text}"`,
      JSON.stringify(text),
    );
  }
});

test('parseDuration returns milliseconds', () => {
  assert.equal(parseDuration('300ms'), 300);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('2h45m'), 9_900_000);
  assert.equal(parseDuration('-1s'), -1000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('1ns'), 0.000001);
  assert.equal(parseDuration('1500us'), 1.5);
  assert.equal(parseDuration('1m0.5s'), 60_500);
  assert.equal(parseDuration('10s'), 10_000);
});

// Go's time_test.go durationTests (String).
const stringCases: Array<[string, bigint]> = [
  ['0s', 0n],
  ['1ns', 1n * NS],
  ['1.1\u00b5s', 1100n * NS],
  ['2.2ms', 2200n * US],
  ['3.3s', 3300n * MS],
  ['4m5s', 4n * M + 5n * S],
  ['4m5.001s', 4n * M + 5001n * MS],
  ['5h6m7.001s', 5n * H + 6n * M + 7001n * MS],
  ['8m0.000000001s', 8n * M + 1n * NS],
  ['2562047h47m16.854775807s', MAX_INT64],
  ['-2562047h47m16.854775808s', MIN_INT64],
];

test('formatDurationNanos: Go Duration.String table', () => {
  for (const [want, d] of stringCases) {
    assert.equal(formatDurationNanos(d), want, want);
    if (d !== 0n && d > MIN_INT64 && d < MAX_INT64) assert.equal(formatDurationNanos(-d), `-${want}`);
  }
  // Out of the int64 range: clamped.
  assert.equal(formatDurationNanos(1n << 70n), '2562047h47m16.854775807s');
});

test('formatDuration takes milliseconds', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [-0, '0s'],
    [0.000001, '1ns'],
    [0.0011, '1.1\u00b5s'],
    [0.15, '150\u00b5s'],
    [2.2, '2.2ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [3300, '3.3s'],
    [123_000, '2m3s'],
    [245_000, '4m5s'],
    [245_001, '4m5.001s'],
    [18_367_001, '5h6m7.001s'],
    [480_000.000001, '8m0.000000001s'],
    [3_600_000, '1h0m0s'],
    [-1000, '-1s'],
    [-1.5, '-1.5ms'],
    [90 * 24 * 3_600_000, '2160h0m0s'],
    // beyond 2^53 ns (~104 days): still formatted, to the precision a double has
    [365 * 24 * 3_600_000, '8760h0m0s'],
    [Infinity, '2562047h47m16.854775807s'],
    [-Infinity, '-2562047h47m16.854775808s'],
    [NaN, '0s'],
  ];
  for (const [ms, want] of cases) assert.equal(formatDuration(ms), want, String(ms));
});

test('parse and format round-trip', () => {
  for (const text of ['1h2m3.004005006s', '150\u00b5s', '2.5ms', '-3m0.5s', '999ns']) {
    assert.equal(formatDurationNanos(parseDurationNanos(text)), text);
    assert.equal(formatDuration(parseDuration(text)), text);
  }
});
