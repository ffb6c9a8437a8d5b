// `ipmask <v4mask> [<v6mask>]`: hides the low bits of the client address in `{remote}`, as Caddy v1's
// Logger.MaskIP (net.IP.Mask, then String(): IPv6 in its shortest RFC 5952 form).
import { isIPv4, isIPv6 } from 'node:net';

export interface IpMask {
  readonly v4: readonly number[];
  readonly v6: readonly number[];
}

const FULL_V4 = [255, 255, 255, 255];
const FULL_V6 = new Array<number>(16).fill(255);

/** The four bytes of an IPv4 address (dotted quad). */
function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** The sixteen bytes of an IPv6 address (any valid textual form, with an embedded IPv4 tail). */
function v6Bytes(ip: string): number[] {
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) > 0) {
    tail = v4Bytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = text.includes('::') ? text.split('::') : [text, undefined];
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const groups =
    right === undefined ? l : [...l, ...new Array<string>(8 - l.length - r.length).fill('0'), ...r];
  const bytes: number[] = [];
  for (const g of groups) {
    const n = parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Go's net.IP.String for 16 bytes: the longest run (≥2) of zero groups becomes `::`; IPv4-mapped as dotted. */
function formatV6(b: readonly number[]): string {
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255) return b.slice(12).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses the masks; undefined for an invalid one (the caller reports which). */
export function parseV4Mask(text: string): number[] | undefined {
  if (isIPv4(text)) return v4Bytes(text);
  // Go's ParseIP(x).To4() also accepts an IPv4-mapped IPv6 text.
  if (isIPv6(text)) {
    const b = v6Bytes(text);
    if (b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255) return b.slice(12);
  }
  return undefined;
}

export function parseV6Mask(text: string): number[] | undefined {
  if (isIPv6(text)) return v6Bytes(text);
  if (isIPv4(text)) return [...new Array<number>(10).fill(0), 255, 255, ...v4Bytes(text)];
  return undefined;
}

export function makeMask(v4?: number[], v6?: number[]): IpMask {
  return { v4: v4 ?? FULL_V4, v6: v6 ?? FULL_V6 };
}

/** The masked address; an address that does not parse is returned as it is. */
export function maskIp(ip: string, mask: IpMask): string {
  if (isIPv4(ip))
    return v4Bytes(ip)
      .map((x, i) => x & mask.v4[i])
      .join('.');
  if (!isIPv6(ip)) return ip;
  const b = v6Bytes(ip);
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255)
    return b
      .slice(12)
      .map((x, i) => x & mask.v4[i])
      .join('.');
  return formatV6(b.map((x, i) => x & mask.v6[i]));
}
