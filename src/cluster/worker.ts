// A cluster worker: serves with a LocalEngine and does what the primary says. It loads each config itself
// (a Config holds functions and cannot cross the channel) from the input text the primary validated.
import { loadConfig, type LoadOptions } from '../app.js';
import type { Logger } from '../core/logger.js';
import { handleProcessFaults } from '../crash.js';
import { LocalEngine, type Prepared } from '../engine.js';
import { setCertificateRequests } from '../core/tls/managed.js';
import { stopClusterTunnels } from './tunnels/index.js';
import { isOurs, type ToPrimary, type ToWorker } from './messages.js';
import {
  applyCertificateSnapshot,
  applyCertificateUpdate,
  RequestsToPrimary,
  sendToPrimary,
} from './worker-certs.js';

export function runWorker(options: LoadOptions, log: Logger, graceMs: number): void {
  const engine = new LocalEngine(log, graceMs);
  const pending = new Map<number, Prepared>();
  const send = (msg: ToPrimary) => sendToPrimary(msg);
  // Certificates this worker lacks are the primary's to obtain (its certificate manager is the ACME client).
  const certificateRequests = new RequestsToPrimary();
  setCertificateRequests(certificateRequests);

  const onMessage = async (msg: ToWorker) => {
    switch (msg.nc) {
      case 'prepare':
        try {
          const prepared = await engine.prepare(loadConfig(msg.input, options));
          pending.set(msg.id, prepared);
          send({ nc: 'prepared', id: msg.id, ok: true, ports: [...prepared.ports] });
        } catch (err) {
          send({ nc: 'prepared', id: msg.id, ok: false, error: (err as Error).message });
        }
        return;
      case 'commit': {
        const prepared = pending.get(msg.id);
        pending.delete(msg.id);
        if (prepared) send({ nc: 'committed', id: msg.id, summary: prepared.commit() });
        return;
      }
      case 'abort':
        await pending.get(msg.id)?.abort();
        pending.delete(msg.id);
        return;
      case 'certs':
        try {
          await applyCertificateUpdate(msg.update);
          send({ nc: 'certsApplied', id: msg.id });
        } catch (err) {
          send({ nc: 'certsApplied', id: msg.id, error: (err as Error).message });
        }
        return;
      case 'certsSnapshot':
        applyCertificateSnapshot(msg.certificates, msg.challenges, log);
        return;
      case 'certNeedAnswer':
        certificateRequests.answer(msg.id, msg.ok);
        return;
      case 'stop':
        await Promise.all([...pending.values()].map((p) => p.abort()));
        await engine.stop(msg.graceMs);
        await stopClusterTunnels().catch(() => undefined);
        process.exit(0);
    }
  };
  process.on('message', (msg: unknown) => {
    if (isOurs<ToWorker>(msg))
      onMessage(msg).catch((err: unknown) => log.error({ err }, 'worker message failed'));
  });

  // Signals are the primary's business (a terminal's Ctrl-C reaches the whole process group); the primary
  // tells workers what to do. A worker whose primary is gone exits (cluster does that on disconnect).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGUSR1', 'SIGHUP'] as const) process.on(signal, () => {});
  handleProcessFaults(log, (drainMs) => engine.stop(drainMs), graceMs);
  send({ nc: 'hello' });
}
