// What the primary and its workers say to each other over the cluster IPC channel (JSON messages).
import type { CaddyfileInput } from '../app.js';
import type { ApplySummary } from '../engine.js';
import type { AcmeChallenge, PemPair } from '../core/tls/managed.js';

/** An issued certificate as it crosses the channel (and as the primary keeps it for new workers). */
export interface CertificateEntry {
  subject: string;
  pem: PemPair;
  notAfter: number;
}

/** What the primary pushes for automatic HTTPS; each is applied to the worker's own maps, then acknowledged. */
export type CertificateUpdate =
  | { op: 'putCertificate'; entry: CertificateEntry }
  | { op: 'putChallenge'; challenge: AcmeChallenge }
  | { op: 'dropChallenge'; challenge: AcmeChallenge };

/** Primary → worker. A switch is prepare (build and bind beside the running config), then commit or abort. */
export type ToWorker =
  | { nc: 'prepare'; id: number; input: CaddyfileInput }
  | { nc: 'commit'; id: number }
  | { nc: 'abort'; id: number }
  | { nc: 'stop'; graceMs: number }
  /** Automatic HTTPS: answered by 'certsApplied' with the same id. */
  | { nc: 'certs'; id: number; update: CertificateUpdate }
  /** Everything a new worker must have before it serves (sent before its first prepare; no answer). */
  | { nc: 'certsSnapshot'; certificates: CertificateEntry[]; challenges: AcmeChallenge[] }
  /** The primary's answer to a worker's 'certNeed'. */
  | { nc: 'certNeedAnswer'; id: number; ok: boolean }
  /** The primary's answer to a worker's 'challengeFind' (null: the cluster has no such challenge). */
  | { nc: 'challengeFound'; id: number; answer: string | PemPair | null };

/** Worker → primary. */
export type ToPrimary =
  | { nc: 'hello' }
  | { nc: 'prepared'; id: number; ok: true; ports: [string, number][] }
  | { nc: 'prepared'; id: number; ok: false; error: string }
  | { nc: 'committed'; id: number; summary: ApplySummary }
  /** A 'certs' update applied (or not: `error`). */
  | { nc: 'certsApplied'; id: number; error?: string }
  /** A handshake wants a certificate on demand for `name` (CertificateRequests.need); answered by id. */
  | { nc: 'certNeed'; id: number; name: string }
  /** An authenticated tunnel client claimed `name` (CertificateRequests.claimed); no answer. */
  | { nc: 'certClaimed'; name: string }
  /** A validation for a challenge this worker does not hold: the primary looks in the shared storage. */
  | { nc: 'challengeFind'; id: number; kind: 'http-01' | 'tls-alpn-01'; key: string };

/** Only our own messages count (cluster uses the same channel for its internal ones). */
export function isOurs<T extends { nc: string }>(msg: unknown): msg is T {
  return typeof msg === 'object' && msg !== null && typeof (msg as { nc?: unknown }).nc === 'string';
}

/** The part of an input that crosses the channel (plain data). */
export function plainInput(input: CaddyfileInput): CaddyfileInput {
  const { text, name, path, baseDir } = input;
  return { text, name, ...(path !== undefined && { path }), ...(baseDir !== undefined && { baseDir }) };
}
