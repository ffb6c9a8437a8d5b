// Mutual proof of the cluster secret, bound to one relay session; the secret itself never crosses the wire.
//
// Both ends derive a key from -cluster-secret (HKDF) and prove it with an HMAC over the session's binding,
// with a different label per direction: the client sends HMAC(key, "client" ‖ binding) on every stream, the
// server answers HMAC(key, "server" ‖ binding) on every response, and the client trusts no answer without it.
//
// - TLS: the binding is RFC 5705 keying material exported from the TLS session. The certificate is a throwaway
//   self-signed one that nobody verifies: trust comes from the proofs, which a man in the middle cannot relay
//   (his two TLS sessions export different material) nor forge (no key). Protects the traffic's content and
//   integrity as well.
// - h2c (private addresses): the binding is a client nonce and a server nonce exchanged on the session's
//   first stream (`hello`). A proof seen on the wire is worthless on any other session (fresh nonces), and a
//   listener without the secret neither gets a request through nor passes as an instance. It does not protect
//   what h2c cannot: an active man in the middle on the private network can read and alter the traffic of a
//   session the two real instances authenticated.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

const KEY_SALT = 'nodecaddy cluster relay';
const KEY_INFO = 'relay proof v1';
const EKM_LABEL = 'EXPORTER-nodecaddy-cluster-relay';
const NONCE_BYTES = 16;

/** The HMAC key both ends derive from the cluster secret. */
export function relayKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, KEY_SALT, KEY_INFO, 32));
}

/** The two proofs of one session. */
export interface SessionProofs {
  /** What the client sends on each stream. */
  readonly client: string;
  /** What the server sends on each response. */
  readonly server: string;
}

export function proofsFor(key: Buffer, binding: Buffer): SessionProofs {
  const mac = (label: string) => createHmac('sha256', key).update(label).update(binding).digest('base64url');
  return { client: mac('client'), server: mac('server') };
}

/** The binding of a TLS session: keying material only its two ends know. */
export function tlsBinding(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(32, EKM_LABEL, Buffer.alloc(0));
}

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}

/** The binding of an h2c session: the client's and the server's nonces (each checked to be a nonce). */
export function nonceBinding(clientNonce: string, serverNonce: string): Buffer | undefined {
  const c = Buffer.from(clientNonce, 'base64url');
  const s = Buffer.from(serverNonce, 'base64url');
  if (c.length !== NONCE_BYTES || s.length !== NONCE_BYTES) return undefined;
  return Buffer.concat([c, s]);
}

/** A presented proof against the expected one, in constant time. */
export function proofMatches(presented: unknown, expected: string): boolean {
  if (typeof presented !== 'string' || presented.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(presented), Buffer.from(expected));
}
