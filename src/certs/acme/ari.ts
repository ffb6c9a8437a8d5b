// ACME Renewal Information (RFC 9773): a CA that lists `renewalInfo` in its directory says, per certificate, in
// which window it should be renewed (earlier than usual before a mass revocation, spread out to avoid load
// spikes). acme-client has none of it, so this is our own: the certificate's identifier, the directory lookup,
// the GET of the window and the choice of a time inside it. No state here but the directory cache: what was
// chosen for which certificate is RenewalTimes' (renewal-times.ts).
import { X509Certificate } from 'node:crypto';
import http from '../../core/node-http.js';
import https from 'node:https';
import { x509 } from '../x509.js';

/** When the answer says nothing about when to ask again (RFC 9773 §4.3.3: six hours). */
export const DEFAULT_RETRY_AFTER_MS = 6 * 3600_000;
/** Retry-After outside these bounds is taken as the bound (the RFC's example: a minute, a day). */
export const MIN_RETRY_AFTER_MS = 60_000;
export const MAX_RETRY_AFTER_MS = 24 * 3600_000;
/** How long a CA's directory (and whether it offers ARI) is believed. */
const DIRECTORY_TTL_MS = 12 * 3600_000;
/** Directories and renewal information are small; anything bigger is not one. */
const MAX_BODY_BYTES = 64 * 1024;

/** The window in which the CA suggests renewing (milliseconds since the epoch; start < end). */
export interface RenewalWindow {
  readonly start: number;
  readonly end: number;
}

/** One valid renewalInfo answer. */
export interface RenewalInfo {
  readonly window: RenewalWindow;
  /** When to ask again: the Retry-After, clamped. */
  readonly retryAfterMs: number;
  /** The CA's page about why the window is what it is (to be shown to the operator). */
  readonly explanationUrl: string | undefined;
}

/**
 * The serial number as DER writes it, without tag and length: the shortest two's complement, so a leading 0x00
 * when the high bit is set (RFC 9773's example: 0x87654321 is `00 87 65 43 21`). X.509 parsers give the hex of
 * the number without that byte.
 */
export function serialOctets(hex: string): Buffer {
  const bytes = Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, 'hex');
  let first = 0;
  while (first < bytes.length - 1 && bytes[first] === 0) first++;
  const value = bytes.subarray(first);
  if (value.length === 0) return Buffer.from([0]);
  return value[0] & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : Buffer.from(value);
}

/**
 * RFC 9773 §4.1's identifier of a certificate (the leaf of a PEM chain): base64url of its Authority Key
 * Identifier's keyIdentifier, a dot, base64url of its serial number's DER octets, without padding. Undefined
 * for a certificate without an AKI keyIdentifier (a CA following RFC 5280 always puts one).
 */
export function ariCertificateId(pem: string): string | undefined {
  const first = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem);
  const leaf = new X509Certificate(first ? first[0] : pem);
  const lib = x509();
  const aki = new lib.X509Certificate(leaf.raw).getExtension(lib.AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) return undefined;
  return `${Buffer.from(aki.keyId, 'hex').toString('base64url')}.${serialOctets(leaf.serialNumber).toString('base64url')}`;
}

/** Milliseconds until the next fetch from a Retry-After header (seconds or an HTTP date), clamped. */
export function retryAfterMs(header: string | undefined, now: number): number {
  let ms = DEFAULT_RETRY_AFTER_MS;
  const value = header?.trim() ?? '';
  if (/^\d+$/.test(value)) ms = Number(value) * 1000;
  // An HTTP date starts with the day's name (RFC 9110 §5.6.7); Date.parse alone would take `-5` for a year.
  else if (/^[A-Za-z]{3}/.test(value) && Number.isFinite(Date.parse(value))) ms = Date.parse(value) - now;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, ms));
}

/** An RFC 3339 timestamp, or undefined. */
function timestamp(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A renewalInfo response body and its Retry-After; throws what is wrong with an invalid one. */
export function parseRenewalInfo(body: string, retryAfter: string | undefined, now: number): RenewalInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new Error('the renewal information is not JSON');
  }
  const window = (doc as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  const start = timestamp(window?.start);
  const end = timestamp(window?.end);
  if (start === undefined || end === undefined)
    throw new Error('the renewal information has no suggestedWindow with RFC 3339 start and end');
  // RFC 9773 §4.2: such a window is invalid, and treated as no answer at all.
  if (end <= start) throw new Error('the suggested renewal window ends before it starts');
  const explanation = (doc as { explanationURL?: unknown }).explanationURL;
  return {
    window: { start, end },
    retryAfterMs: retryAfterMs(retryAfter, now),
    explanationUrl: typeof explanation === 'string' ? explanation : undefined,
  };
}

/**
 * RFC 9773 §4.2's recommended choice: a uniformly random time inside the window, spreading the CA's load;
 * one already past means now.
 */
export function chooseRenewalTime(
  window: RenewalWindow,
  now: number,
  random: () => number = Math.random,
): number {
  return Math.max(now, window.start + random() * (window.end - window.start));
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly retryAfter: string | undefined;
}

/** One GET, bounded in time and size; trust is Node's (the system's plus NODE_EXTRA_CA_CERTS). */
function get(url: string, timeoutMs: number, signal: AbortSignal): Promise<Answer> {
  const client = url.startsWith('http:') ? http : https;
  return new Promise((resolve, reject) => {
    const req = client.get(
      url,
      {
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        headers: { accept: 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error(`the answer of ${url} is too big`));
          else chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            retryAfter: res.headers['retry-after'],
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err: Error) =>
      reject(
        err.name === 'AbortError' || err.name === 'TimeoutError' ? new Error(`no answer from ${url}`) : err,
      ),
    );
  });
}

/** Asks CAs for renewal information; one per manager (it caches the directories). */
export class AriClient {
  private readonly directories = new Map<
    string,
    { renewalInfo: Promise<string | undefined>; until: number }
  >();
  private readonly aborts = new AbortController();

  /** timeoutMs: -catimeout, the longest wait for one request to the CA. */
  constructor(private readonly timeoutMs: number) {}

  /**
   * The certificate's renewal information at the CA, or 'none' when the CA offers no ARI. Throws when the CA
   * could not be asked or gave an invalid answer.
   */
  async renewalInfo(ca: string, certId: string): Promise<RenewalInfo | 'none'> {
    const base = await this.renewalInfoUrl(ca);
    if (!base) return 'none';
    const url = `${base.replace(/\/$/, '')}/${certId}`;
    const answer = await get(url, this.timeoutMs, this.aborts.signal);
    if (answer.status !== 200) throw new Error(`GET ${url}: HTTP ${answer.status}`);
    return parseRenewalInfo(answer.body, answer.retryAfter, Date.now());
  }

  /** Gives up the requests under way (the manager stops). */
  stop(): void {
    this.aborts.abort();
  }

  /** The directory's `renewalInfo` URL, or undefined: cached per CA, a failed lookup is not. */
  private renewalInfoUrl(ca: string): Promise<string | undefined> {
    const cached = this.directories.get(ca);
    if (cached && Date.now() < cached.until) return cached.renewalInfo;
    const entry = { renewalInfo: this.readDirectory(ca), until: Date.now() + DIRECTORY_TTL_MS };
    this.directories.set(ca, entry);
    entry.renewalInfo.catch(() => {
      if (this.directories.get(ca) === entry) this.directories.delete(ca);
    });
    return entry.renewalInfo;
  }

  private async readDirectory(ca: string): Promise<string | undefined> {
    const answer = await get(ca, this.timeoutMs, this.aborts.signal);
    if (answer.status !== 200) throw new Error(`GET ${ca}: HTTP ${answer.status}`);
    let directory: unknown;
    try {
      directory = JSON.parse(answer.body);
    } catch {
      throw new Error(`the directory at ${ca} is not JSON`);
    }
    const url = (directory as { renewalInfo?: unknown } | null)?.renewalInfo;
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) return undefined;
    return url;
  }
}
