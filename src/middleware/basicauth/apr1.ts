// MD5-crypt (`$1$`) and Apache's variant (`$apr1$`): the same algorithm with a different magic string.
// Written from the published algorithm (Poul-Henning Kamp's md5crypt, as in Apache's apr_md5.c).
import { createHash } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function md5(...parts: Buffer[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

function to64(value: number, count: number): string {
  let out = '';
  for (let v = value; count > 0; count--, v >>>= 6) out += ITOA64[v & 0x3f];
  return out;
}

/** The full hash string (`$apr1$salt$checksum`) of `password` with `salt` (at most 8 characters used). */
export function md5Crypt(password: string, salt: string, magic: '$apr1$' | '$1$'): string {
  const pw = Buffer.from(password, 'utf8');
  const saltText = salt.slice(0, 8);
  const s = Buffer.from(saltText, 'utf8');
  const m = Buffer.from(magic, 'utf8');
  let alt = md5(pw, s, pw);
  const h = createHash('md5').update(pw).update(m).update(s);
  for (let left = pw.length; left > 0; left -= 16) h.update(alt.subarray(0, Math.min(16, left)));
  // The length's bits pick a NUL byte or the password's first byte (a famous oddity, kept for compatibility).
  for (let i = pw.length; i > 0; i >>>= 1) h.update(i & 1 ? Buffer.alloc(1) : pw.subarray(0, 1));
  alt = h.digest();
  for (let i = 0; i < 1000; i++) {
    const r = createHash('md5');
    r.update(i & 1 ? pw : alt);
    if (i % 3) r.update(s);
    if (i % 7) r.update(pw);
    r.update(i & 1 ? alt : pw);
    alt = r.digest();
  }
  const f = alt;
  const checksum =
    to64((f[0] << 16) | (f[6] << 8) | f[12], 4) +
    to64((f[1] << 16) | (f[7] << 8) | f[13], 4) +
    to64((f[2] << 16) | (f[8] << 8) | f[14], 4) +
    to64((f[3] << 16) | (f[9] << 8) | f[15], 4) +
    to64((f[4] << 16) | (f[10] << 8) | f[5], 4) +
    to64(f[11], 2);
  return `${magic}${saltText}$${checksum}`;
}
