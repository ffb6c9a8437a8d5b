// What the primary and its workers say to each other over the cluster IPC channel (JSON messages).
import type { CaddyfileInput } from '../app.js';
import type { ApplySummary } from '../engine.js';

/** Primary → worker. A switch is prepare (build and bind beside the running config), then commit or abort. */
export type ToWorker =
  | { nc: 'prepare'; id: number; input: CaddyfileInput }
  | { nc: 'commit'; id: number }
  | { nc: 'abort'; id: number }
  | { nc: 'stop'; graceMs: number };

/** Worker → primary. */
export type ToPrimary =
  | { nc: 'hello' }
  | { nc: 'prepared'; id: number; ok: true; ports: [string, number][] }
  | { nc: 'prepared'; id: number; ok: false; error: string }
  | { nc: 'committed'; id: number; summary: ApplySummary };

/** Only our own messages count (cluster uses the same channel for its internal ones). */
export function isOurs<T extends { nc: string }>(msg: unknown): msg is T {
  return typeof msg === 'object' && msg !== null && typeof (msg as { nc?: unknown }).nc === 'string';
}

/** The part of an input that crosses the channel (plain data). */
export function plainInput(input: CaddyfileInput): CaddyfileInput {
  const { text, name, path, baseDir } = input;
  return { text, name, ...(path !== undefined && { path }), ...(baseDir !== undefined && { baseDir }) };
}
