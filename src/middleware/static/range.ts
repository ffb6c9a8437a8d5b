// Range header parsing (RFC 9110 §14.2). A header we cannot make sense of is ignored (the whole file is
// sent, as the RFC allows); one that makes sense but selects nothing is a 416.

export type RangeSpec = readonly [start: number, end: number]; // inclusive

/** 'ignore' → send the whole representation; 'unsatisfiable' → 416; else the ranges, in request order. */
export type RangeResult = 'ignore' | 'unsatisfiable' | RangeSpec[];

/** More ranges than this is no longer a reasonable request: ignored (whole file). */
const MAX_RANGES = 32;
/** A Range header longer than this is not worth parsing. */
const MAX_HEADER = 1024;
/** More digits than this is past any file size (and past exact doubles). */
const MAX_DIGITS = 15;

const SPEC = /^(\d*)[ \t]*-[ \t]*(\d*)$/;

export function parseRange(header: string, size: number): RangeResult {
  if (header.length > MAX_HEADER) return 'ignore';
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return 'ignore';
  const ranges: RangeSpec[] = [];
  let total = 0;
  let any = false;
  for (const part of header.slice(eq + 1).split(',')) {
    const spec = part.trim();
    if (spec === '') continue; // empty list elements are allowed
    const m = SPEC.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return 'ignore';
    any = true;
    const first = toNumber(m[1]);
    const last = toNumber(m[2]);
    let start: number;
    let end: number;
    if (m[1] === '') {
      // Suffix range: the last N bytes.
      if (last === 0 || size === 0) continue;
      start = Math.max(0, size - last);
      end = size - 1;
    } else {
      if (m[2] !== '' && last < first) return 'ignore';
      if (first >= size) continue; // not satisfiable on its own; others may be
      start = first;
      end = m[2] === '' ? size - 1 : Math.min(last, size - 1);
    }
    ranges.push([start, end]);
    total += end - start + 1;
    if (ranges.length > MAX_RANGES) return 'ignore';
  }
  if (!any) return 'ignore';
  if (ranges.length === 0) return 'unsatisfiable';
  // Overlapping ranges that add up to more than the file are an amplification trick: send it once instead.
  if (ranges.length > 1 && total > size) return 'ignore';
  return ranges;
}

function toNumber(digits: string): number {
  if (digits === '') return 0;
  return digits.length > MAX_DIGITS ? Number.MAX_SAFE_INTEGER : Number(digits);
}
