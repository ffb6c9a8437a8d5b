// Values at rest in a shared storage, sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
// cluster secret: a Redis dump or a replica does not hand out private keys, and a value cannot be moved to
// another key unnoticed (the key is the additional authenticated data). A value sealed under another secret
// (an instance started with the wrong -cluster-secret) is refused with that reason, never returned as garbage.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** The format's first byte: a later format can live beside this one. */
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SealError extends Error {}

export class Sealer {
  private readonly key: Buffer;

  /** `context` separates keys derived from one secret for different uses (e.g. the storage's prefix). */
  constructor(secret: string, context: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'nodecaddy storage', `aes-256-gcm ${context}`, 32));
  }

  seal(name: string, value: Buffer | string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(value), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]);
  }

  open(name: string, sealed: Buffer): Buffer {
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION)
      throw new SealError(
        `storage key ${JSON.stringify(name)}: not a value nodecaddy stored (unknown format)`,
      );
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch {
      throw new SealError(
        `storage key ${JSON.stringify(name)} cannot be decrypted: it was stored with another -cluster-secret (every instance of a cluster needs the same one), or it was altered`,
      );
    }
  }
}
