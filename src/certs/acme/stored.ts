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

/** What RenewalTimes chose for a certificate from the CA's renewal information, kept in the certificate's .json. */
export interface SavedRenewalInfo {
  /** The certificate it is for (RFC 9773's identifier): a renewed certificate's .json has none yet. */
  readonly certId: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  /** The time chosen inside the window: a restart keeps it instead of choosing again. */
  readonly renewAt: number;
  /** When to ask the CA again. */
  readonly nextFetch: number;
  readonly explanationUrl: string | undefined;
}

async function loadMeta(storage: Storage, key: string): Promise<Record<string, unknown> | undefined> {
  const raw = await storage.load(key);
  if (!raw) return undefined;
  try {
    const meta: unknown = JSON.parse(raw.toString());
    return meta && typeof meta === 'object' ? (meta as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The renewal information saved for the subject's certificate, if any (and readable). */
export async function loadRenewalInfo(
  storage: Storage,
  ca: string,
  subject: string,
): Promise<SavedRenewalInfo | undefined> {
  const ari = (await loadMeta(storage, `${prefix(ca, subject)}.json`))?.ari as
    Record<string, unknown> | undefined;
  if (!ari || typeof ari.certId !== 'string') return undefined;
  const times = [ari.windowStart, ari.windowEnd, ari.renewAt, ari.nextFetch].map((t) =>
    typeof t === 'string' ? Date.parse(t) : NaN,
  );
  if (times.some((t) => !Number.isFinite(t))) return undefined;
  const [windowStart, windowEnd, renewAt, nextFetch] = times;
  const explanationUrl = typeof ari.explanationUrl === 'string' ? ari.explanationUrl : undefined;
  return { certId: ari.certId, windowStart, windowEnd, renewAt, nextFetch, explanationUrl };
}

/** Adds the renewal information to the subject's .json (kept as it is otherwise). */
export async function saveRenewalInfo(
  storage: Storage,
  ca: string,
  subject: string,
  info: SavedRenewalInfo,
): Promise<void> {
  const key = `${prefix(ca, subject)}.json`;
  const meta = (await loadMeta(storage, key)) ?? { subject, ca };
  const iso = (t: number) => new Date(t).toISOString();
  meta.ari = {
    certId: info.certId,
    windowStart: iso(info.windowStart),
    windowEnd: iso(info.windowEnd),
    renewAt: iso(info.renewAt),
    nextFetch: iso(info.nextFetch),
    ...(info.explanationUrl !== undefined && { explanationUrl: info.explanationUrl }),
  };
  await storage.store(key, JSON.stringify(meta));
}

/** When a certificate is renewed: with a third of its lifetime left (certmagic's ratio). */
export function renewalTime(issued: Pick<Issued, 'notBefore' | 'notAfter'>): number {
  return issued.notAfter - (issued.notAfter - issued.notBefore) / 3;
}
