// Certificates in storage, per CA (Caddy v1's layout, tls.md §1.7): acme/<ca>/sites/<name>/<name>.crt (the chain),
// .key and .json (when and for what it was issued). Written after an order, read at start, on reload and by
// the other processes or instances that share the storage.
import { X509Certificate } from 'node:crypto';
import { safeKeyPart, type Storage } from '../storage.js';
import { caKey, type Issued } from './issuer.js';

function prefix(ca: string, subject: string): string {
  const name = safeKeyPart(subject);
  return `acme/${caKey(ca)}/sites/${name}/${name}`;
}

/** The lock that one order or renewal of the subject at this CA holds, across processes and instances. */
export function orderLockName(ca: string, subject: string): string {
  return `cert_${caKey(ca)}_${safeKeyPart(subject)}`;
}

export async function loadStored(storage: Storage, ca: string, subject: string): Promise<Issued | undefined> {
  const p = prefix(ca, subject);
  const [cert, key] = await Promise.all([storage.load(`${p}.crt`), storage.load(`${p}.key`)]);
  if (!cert || !key) return undefined;
  try {
    const leaf = new X509Certificate(cert);
    return {
      cert: cert.toString(),
      key: key.toString(),
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
    };
  } catch {
    return undefined; // unreadable: ordered again
  }
}

export async function saveIssued(
  storage: Storage,
  ca: string,
  subject: string,
  issued: Issued,
): Promise<void> {
  const p = prefix(ca, subject);
  // The key first: a reader that finds the new chain finds its key.
  await storage.store(`${p}.key`, issued.key);
  await storage.store(`${p}.crt`, issued.cert);
  await storage.store(
    `${p}.json`,
    JSON.stringify({
      subject,
      ca,
      notBefore: new Date(issued.notBefore).toISOString(),
      notAfter: new Date(issued.notAfter).toISOString(),
      obtained: new Date().toISOString(),
    }),
  );
}

/** When a certificate is renewed: with a third of its lifetime left (certmagic's ratio). */
export function renewalTime(issued: Pick<Issued, 'notBefore' | 'notAfter'>): number {
  return issued.notAfter - (issued.notAfter - issued.notBefore) / 3;
}
