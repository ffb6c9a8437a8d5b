// Notes between sibling worker processes (-workers N), relayed by the cluster primary to every other worker.
// For state that lives per process but concerns a resource they share: e.g. idle FastCGI connections of one
// worker pinning every php-fpm child while another worker's request waits. In a single process, a no-op.
import cluster from 'node:cluster';

export const BROADCAST = 'broadcast';

/** The IPC message (also what the primary relays). */
export interface BroadcastMessage {
  nc: typeof BROADCAST;
  topic: string;
  data: string;
}

type Listener = (data: string) => void;
const listeners = new Map<string, Set<Listener>>();
let hooked = false;

/** Tells every other worker. Fire and forget: delivery is best effort (a worker may be restarting). */
export function broadcast(topic: string, data: string): void {
  if (!cluster.isWorker || !process.send || !process.connected) return;
  const msg: BroadcastMessage = { nc: BROADCAST, topic, data };
  process.send(msg);
}

/** Listens for a topic from the other workers; returns the unsubscribe function. */
export function onBroadcast(topic: string, listener: Listener): () => void {
  hook();
  let set = listeners.get(topic);
  if (!set) listeners.set(topic, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
  };
}

export function isBroadcast(msg: unknown): msg is BroadcastMessage {
  return typeof msg === 'object' && msg !== null && (msg as { nc?: unknown }).nc === BROADCAST;
}

function hook(): void {
  if (hooked || !cluster.isWorker) return;
  hooked = true;
  process.on('message', (msg: unknown) => {
    if (!isBroadcast(msg)) return;
    for (const l of listeners.get(msg.topic) ?? []) l(msg.data);
  });
}
