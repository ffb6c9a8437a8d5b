// Per-tunnel basic auth, set by the client (`-basic-auth user:pass`) and checked on the server before a
// request is sent into the tunnel: a visitor without the credentials never reaches the laptop.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Forwarded } from './relay.js';
import { TunnelError } from './relay.js';

export class VisitorAuth {
  private readonly want: Buffer;
  private readonly realm: string;

  private constructor(credentials: string, realm: string) {
    this.want = digest(credentials);
    this.realm = realm;
  }

  /** From the handshake header (base64 of `user:pass`); undefined when absent, an Error when malformed. */
  static fromHeader(value: string | undefined, realm: string): VisitorAuth | undefined | Error {
    if (value === undefined || value === '') return undefined;
    const credentials = Buffer.from(value, 'base64').toString('utf8');
    const colon = credentials.indexOf(':');
    if (colon < 1 || colon === credentials.length - 1) {
      return new Error('basic auth must be user:password, both non-empty');
    }
    return new VisitorAuth(credentials, realm);
  }

  /**
   * Lets the request through when it carries the credentials, and takes them off (the target's own auth is
   * its business, and the tunnel's password stays on the server); else a 401 asking for them.
   */
  check(fwd: Forwarded): void {
    const given = fwd.headers.authorization;
    const m = typeof given === 'string' ? /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(given) : null;
    if (m && timingSafeEqual(digest(Buffer.from(m[1], 'base64').toString('utf8')), this.want)) {
      delete fwd.headers.authorization;
      return;
    }
    throw new TunnelError(401, 'auth', `${this.realm} needs a user name and password`, {
      'www-authenticate': `Basic realm="${this.realm}", charset="UTF-8"`,
    });
  }
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
