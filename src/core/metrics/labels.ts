// Label values with bounded cardinality: a status code is one of the known codes or its class (`2xx`), a
// method one of the standard ones or OTHER. Both map to small integers once, so that a request counts into an
// array slot and never builds a label string.
import { STATUS_CODES } from '../node-http.js';

/** Codes that keep their own label: the registered ones Node knows, and 499 (client closed, as Caddy logs). */
const KNOWN_CODES = [...Object.keys(STATUS_CODES).map(Number), 499]
  .filter((c) => c >= 100 && c <= 599)
  .sort((a, b) => a - b);

/** Every code label, known codes first, then the classes `1xx`…`5xx`, then `other` (outside 100-599). */
export const CODE_LABELS: readonly string[] = [
  ...KNOWN_CODES.map(String),
  '1xx',
  '2xx',
  '3xx',
  '4xx',
  '5xx',
  'other',
];
const CLASS_BASE = KNOWN_CODES.length;
const OTHER = CODE_LABELS.length - 1;

/** status → slot in CODE_LABELS, for 0-599. */
const CODE_SLOT = new Int16Array(600).fill(OTHER);
for (let s = 100; s < 600; s++) CODE_SLOT[s] = CLASS_BASE + Math.floor(s / 100) - 1;
KNOWN_CODES.forEach((c, i) => (CODE_SLOT[c] = i));

/** The slot of a status code in CODE_LABELS: its own, its class's, or `other`. */
export function codeSlot(status: number): number {
  return status >= 0 && status < 600 ? CODE_SLOT[status | 0] : OTHER;
}

export const METHOD_LABELS: readonly string[] = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'OTHER',
];

/** The slot of a request method in METHOD_LABELS (Node hands methods over upper-cased). */
export function methodSlot(method: string | undefined): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'PATCH':
      return 5;
    case 'OPTIONS':
      return 6;
    case 'CONNECT':
      return 7;
    case 'TRACE':
      return 8;
    default:
      return 9;
  }
}
