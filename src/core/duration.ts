// Go's duration syntax (time.ParseDuration / Duration.String), used for -grace, timeouts and {latency}.
// Durations are int64 nanoseconds in Go; the public API speaks milliseconds (a JS number), and the *Nanos
// variants keep Go's exact int64 semantics for callers (and tests) that need them.

const MAX_INT64 = (1n << 63n) - 1n;
const OVERFLOW = 1n << 63n; // magnitude of the most negative int64

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // µ MICRO SIGN
  ['\u03bcs', 1_000n], // μ GREEK SMALL LETTER MU
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

function invalid(s: string): Error {
  return new Error(`invalid duration "${s}"`);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Parses a Go duration ("300ms", "1.5h", "2h45m", "-1s", "0") into exact int64 nanoseconds.
 * Grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare `0`. Throws `invalid duration "<s>"`.
 */
export function parseDurationNanos(s: string): bigint {
  const orig = s;
  let i = 0;
  let neg = false;
  if (s.length > 0 && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    i = 1;
  }
  if (s.length - i === 1 && s[i] === '0') return 0n;
  if (i === s.length) throw invalid(orig);

  let total = 0n;
  while (i < s.length) {
    const c0 = s.charCodeAt(i);
    if (!(c0 === 46 /* . */ || isDigit(c0))) throw invalid(orig);

    // Integer part: overflowing it is an error.
    let v = 0n;
    const intStart = i;
    while (i < s.length && isDigit(s.charCodeAt(i))) {
      v = v * 10n + BigInt(s.charCodeAt(i) - 48);
      if (v > OVERFLOW) throw invalid(orig);
      i++;
    }
    const pre = i !== intStart;

    // Fraction: digits beyond int64 precision are consumed but ignored (as Go does).
    let f = 0n;
    let scale = 1;
    let post = false;
    if (i < s.length && s[i] === '.') {
      i++;
      const fracStart = i;
      let overflow = false;
      while (i < s.length && isDigit(s.charCodeAt(i))) {
        if (!overflow) {
          const y = f * 10n + BigInt(s.charCodeAt(i) - 48);
          if (f > MAX_INT64 / 10n || y > OVERFLOW) overflow = true;
          else {
            f = y;
            scale *= 10;
          }
        }
        i++;
      }
      post = i !== fracStart;
    }
    if (!pre && !post) throw invalid(orig); // "." or ".s"

    const unitStart = i;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 46 || isDigit(c)) break;
      i++;
    }
    if (i === unitStart) throw invalid(orig); // missing unit
    const unit = UNITS.get(s.slice(unitStart, i));
    if (unit === undefined) throw invalid(orig); // unknown unit

    if (v > OVERFLOW / unit) throw invalid(orig);
    v *= unit;
    if (f > 0n) {
      // Same float arithmetic as Go: float64(f) * (float64(unit) / scale), truncated.
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > OVERFLOW) throw invalid(orig);
    }
    total += v;
    if (total > OVERFLOW) throw invalid(orig);
  }
  if (neg) return -total;
  if (total > MAX_INT64) throw invalid(orig);
  return total;
}

/** Parses a Go duration into milliseconds (fractional below 1ms). See {@link parseDurationNanos}. */
export function parseDuration(s: string): number {
  const ns = parseDurationNanos(s);
  // Split so that values below 2^53 ms stay exact to the nanosecond where a double allows it.
  const ms = ns / 1_000_000n;
  const rest = ns % 1_000_000n;
  return Number(ms) + Number(rest) / 1e6;
}

/** Writes v/10^prec's fraction (".123", trailing zeros dropped, nothing when zero); returns [text, v/10^prec]. */
function fmtFrac(v: number, prec: number): [string, number] {
  let digits = '';
  let print = false;
  for (let i = 0; i < prec; i++) {
    const digit = v % 10;
    print = print || digit !== 0;
    if (print) digits = String(digit) + digits;
    v = (v - digit) / 10;
  }
  return [print ? `.${digits}` : '', v];
}

/** Go's Duration.String() for |d| = secs * 1e9 + nanos (both safe integers, nanos < 1e9). */
function formatParts(neg: boolean, secs: number, nanos: number): string {
  let out: string;
  if (secs === 0) {
    if (nanos === 0) return '0s';
    let unit: string;
    let prec: number;
    if (nanos < 1_000) {
      unit = 'ns';
      prec = 0;
    } else if (nanos < 1_000_000) {
      unit = '\u00b5s';
      prec = 3;
    } else {
      unit = 'ms';
      prec = 6;
    }
    const [frac, whole] = fmtFrac(nanos, prec);
    out = `${whole}${frac}${unit}`;
  } else {
    const [frac] = fmtFrac(nanos, 9);
    const s = secs % 60;
    const minutes = (secs - s) / 60;
    out = `${s}${frac}s`;
    if (minutes > 0) {
      const m = minutes % 60;
      const hours = (minutes - m) / 60;
      out = `${m}m${out}`;
      if (hours > 0) out = `${hours}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}

/** Go's Duration.String() of an exact int64 nanosecond count (clamped to the int64 range). */
export function formatDurationNanos(ns: bigint): string {
  if (ns > MAX_INT64) ns = MAX_INT64;
  else if (ns < -OVERFLOW) ns = -OVERFLOW;
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  return formatParts(neg, Number(abs / 1_000_000_000n), Number(abs % 1_000_000_000n));
}

const MAX_SAFE_NS_MS = Number.MAX_SAFE_INTEGER / 1e6;

/** Go's Duration.String() for a duration in milliseconds, rounded to the nanosecond ("1.5s", "2m3s", "150µs", "0s"). */
export function formatDuration(ms: number): string {
  if (Number.isNaN(ms)) return '0s';
  const neg = ms < 0;
  const abs = neg ? -ms : ms;
  if (abs <= MAX_SAFE_NS_MS) {
    // Exact integer nanoseconds: the fast path used per request ({latency}).
    const ns = Math.round(abs * 1e6);
    const nanos = ns % 1e9;
    return formatParts(neg && ns !== 0, (ns - nanos) / 1e9, nanos);
  }
  if (!Number.isFinite(abs)) return formatDurationNanos(neg ? -OVERFLOW : MAX_INT64);
  let secs = Math.trunc(abs / 1000);
  let nanos = Math.round((abs - secs * 1000) * 1e6);
  if (nanos >= 1e9) {
    secs += 1;
    nanos -= 1e9;
  }
  const total = BigInt(secs) * 1_000_000_000n + BigInt(nanos);
  return formatDurationNanos(neg ? -total : total);
}
