// The metrics core without a server: bounded label values, families from several processes added up, and the
// Prometheus text they render to.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CODE_LABELS, METHOD_LABELS, codeSlot, methodSlot } from '../../src/core/metrics/labels.js';
import { cumulativeOnly, mergeFamilies, renderText, type Family } from '../../src/core/metrics/registry.js';

describe('label values', () => {
  test('known codes keep their label; unknown ones fold into their class; out of range is other', () => {
    const label = (s: number) => CODE_LABELS[codeSlot(s)];
    assert.deepEqual([200, 404, 499, 502, 101, 418].map(label), ['200', '404', '499', '502', '101', '418']);
    assert.deepEqual([299, 460, 599, 150, 399].map(label), ['2xx', '4xx', '5xx', '1xx', '3xx']);
    assert.deepEqual([0, 99, 600, 1000, -1, 200.5].map(label), [
      'other',
      'other',
      'other',
      'other',
      'other',
      '200',
    ]);
  });

  test('methods: the standard ones, everything else OTHER', () => {
    const label = (m: string | undefined) => METHOD_LABELS[methodSlot(m)];
    assert.deepEqual(['GET', 'POST', 'PATCH', 'TRACE'].map(label), ['GET', 'POST', 'PATCH', 'TRACE']);
    assert.deepEqual(['PROPFIND', 'get', 'X'.repeat(100), undefined].map(label), [
      'OTHER',
      'OTHER',
      'OTHER',
      'OTHER',
    ]);
  });
});

const counter = (value: number, labels = ['a']): Family => ({
  name: 'x_total',
  help: 'Things.',
  type: 'counter',
  labelNames: ['site'],
  merge: 'sum',
  series: [{ labels, value }],
});
const healthy = (value: number): Family => ({
  name: 'up',
  help: 'Up.',
  type: 'gauge',
  labelNames: ['upstream'],
  merge: 'min',
  series: [{ labels: ['u'], value }],
});
const histogram = (buckets: number[], sum: number): Family => ({
  name: 'd_seconds',
  help: 'Durations.',
  type: 'histogram',
  labelNames: ['site'],
  merge: 'sum',
  bounds: [0.1, 1],
  series: [{ labels: ['a'], value: buckets.reduce((s, b) => s + b, 0), buckets, sum }],
});

describe('merging and rendering', () => {
  test('counters and histograms add up, a min gauge takes the smallest, new series are kept', () => {
    const merged = mergeFamilies([
      [counter(2), healthy(1), histogram([1, 2, 0], 1.5)],
      [counter(3), counter(7, ['b']), healthy(0), histogram([0, 1, 1], 2.5)],
    ]);
    assert.deepEqual(
      merged.map((f) => f.name),
      ['d_seconds', 'up', 'x_total'],
    );
    const text = renderText(merged);
    assert.equal(
      text,
      [
        '# HELP d_seconds Durations.',
        '# TYPE d_seconds histogram',
        'd_seconds_bucket{site="a",le="0.1"} 1',
        'd_seconds_bucket{site="a",le="1"} 4',
        'd_seconds_bucket{site="a",le="+Inf"} 5',
        'd_seconds_sum{site="a"} 4',
        'd_seconds_count{site="a"} 5',
        '# HELP up Up.',
        '# TYPE up gauge',
        'up{upstream="u"} 0',
        '# HELP x_total Things.',
        '# TYPE x_total counter',
        'x_total{site="a"} 5',
        'x_total{site="b"} 7',
        '',
      ].join('\n'),
    );
  });

  test('label values are escaped; a family without series still says what it is', () => {
    const f = counter(1, ['a "quoted" \\ value\nwith a newline']);
    assert.match(renderText([f]), /^x_total\{site="a \\"quoted\\" \\\\ value\\nwith a newline"\} 1$/m);
    assert.equal(renderText([{ ...f, series: [] }]), '# HELP x_total Things.\n# TYPE x_total counter\n');
  });

  test("a gone worker's counters are kept, not its gauges nor its per-worker series", () => {
    const perWorker: Family = {
      ...counter(5),
      name: 'cpu_total',
      labelNames: ['worker'],
      series: [{ labels: ['3'], value: 5 }],
    };
    assert.deepEqual(
      cumulativeOnly([counter(1), healthy(1), histogram([1, 0, 0], 0.05), perWorker]).map((f) => f.name),
      ['x_total', 'd_seconds'],
    );
  });
});
