// Password checks for basicauth: plain passwords and htpasswd entries (bcrypt `$2a$/$2b$/$2y$`, `{SHA}`,
// MD5-crypt `$apr1$` and `$1$`, `{PLAIN}` and plain text). Every comparison takes constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { md5Crypt } from './apr1.js';
import { loadBcrypt, verifyBcrypt } from './bcrypt.js';

/** Checks a password; async for bcrypt (checked on the thread pool, see bcrypt.ts). */
export type PasswordCheck = (password: string) => boolean | Promise<boolean>;

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Equal-length digests compared in constant time: neither length nor content leaks through timing. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export function plainCheck(expected: string): PasswordCheck {
  const want = sha256(expected);
  return (password) => timingSafeEqual(sha256(password), want);
}

/** The check for one htpasswd hash field. Throws a plain Error for a scheme we cannot verify. */
export function hashCheck(encoded: string): PasswordCheck {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(encoded)) {
    loadBcrypt();
    return (password) => verifyBcrypt(password, encoded);
  }
  if (encoded.startsWith('$2')) throw new Error('malformed bcrypt hash');
  if (encoded.startsWith('{SHA}')) {
    const want = Buffer.from(encoded.slice(5), 'base64');
    if (want.length !== 20) throw new Error('malformed {SHA} hash (expected base64 of 20 bytes)');
    return (password) => timingSafeEqual(createHash('sha1').update(password).digest(), want);
  }
  for (const magic of ['$apr1$', '$1$'] as const) {
    if (!encoded.startsWith(magic)) continue;
    const rest = encoded.slice(magic.length);
    const dollar = rest.indexOf('$');
    if (dollar < 0) throw new Error(`malformed ${magic} hash`);
    const salt = rest.slice(0, dollar);
    const want = Buffer.from(rest.slice(dollar + 1));
    if (want.length !== 22) throw new Error(`malformed ${magic} hash (expected a 22-character checksum)`);
    return (password) => {
      const hashed = md5Crypt(password, salt, magic);
      const got = Buffer.from(hashed.slice(hashed.lastIndexOf('$') + 1));
      return got.length === want.length && timingSafeEqual(got, want);
    };
  }
  if (encoded.startsWith('{PLAIN}')) return plainCheck(encoded.slice(7));
  // A `$id$` crypt we do not know (SHA-crypt `$5$`/`$6$`, …) must not silently become a plain password.
  if (/^\$[a-z0-9]+\$/i.test(encoded)) throw new Error(`unsupported hash scheme ${encoded.split('$')[1]}`);
  return plainCheck(encoded);
}

/** Parses htpasswd text into user → check. Throws a plain Error naming the line. */
export function parseHtpasswd(text: string): Map<string, PasswordCheck> {
  const users = new Map<string, PasswordCheck>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`line ${i + 1}: malformed line, no colon`);
    try {
      users.set(line.slice(0, colon), hashCheck(line.slice(colon + 1)));
    } catch (err) {
      throw new Error(`line ${i + 1}: ${(err as Error).message}`, { cause: err });
    }
  });
  return users;
}
