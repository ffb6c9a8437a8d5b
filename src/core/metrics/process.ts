// Each process's own health, labelled by worker: memory, CPU, event-loop delay, open file descriptors.
// Read at scrape time; the event-loop delay is sampled by Node (perf_hooks) and read since the last scrape.
import { readdir } from 'node:fs/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { registerCollector, type Family } from './registry.js';

let started = false;

/** Adds this process's metrics to its scrapes, labelled `worker="<label>"`. Once per process. */
export function startProcessMetrics(worker: string): void {
  if (started) return;
  started = true;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const startTime = Date.now() / 1000 - process.uptime();
  registerCollector(() => processFamilies(worker, delay, startTime));
}

async function openFds(): Promise<number | undefined> {
  try {
    return (await readdir('/proc/self/fd')).length - 1; // less the one readdir itself holds
  } catch {
    return undefined; // not Linux
  }
}

function gauge(name: string, help: string, worker: string, value: number): Family {
  return {
    name,
    help,
    type: 'gauge',
    labelNames: ['worker'],
    merge: 'sum',
    series: [{ labels: [worker], value }],
  };
}

async function processFamilies(
  worker: string,
  delay: IntervalHistogram,
  startTime: number,
): Promise<Family[]> {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  // Nanoseconds since the previous scrape; the window restarts so a stall shows once, then clears.
  const p99 = delay.count > 0 ? delay.percentile(99) / 1e9 : 0;
  const max = delay.count > 0 ? delay.max / 1e9 : 0;
  delay.reset();
  const families: Family[] = [
    gauge('nodecaddy_process_resident_memory_bytes', 'Resident set size.', worker, memory.rss),
    gauge('nodecaddy_process_heap_used_bytes', 'V8 heap in use.', worker, memory.heapUsed),
    gauge('nodecaddy_process_heap_total_bytes', 'V8 heap reserved.', worker, memory.heapTotal),
    {
      name: 'nodecaddy_process_cpu_seconds_total',
      help: 'CPU time used (user and system).',
      type: 'counter',
      labelNames: ['worker'],
      merge: 'sum',
      series: [{ labels: [worker], value: (cpu.user + cpu.system) / 1e6 }],
    },
    gauge(
      'nodecaddy_process_event_loop_lag_p99_seconds',
      'Event-loop delay, 99th percentile since the previous scrape.',
      worker,
      p99,
    ),
    gauge(
      'nodecaddy_process_event_loop_lag_max_seconds',
      'Event-loop delay, the longest since the previous scrape.',
      worker,
      max,
    ),
    gauge('nodecaddy_process_start_time_seconds', 'When the process started (Unix time).', worker, startTime),
  ];
  const fds = await openFds();
  if (fds !== undefined)
    families.push(gauge('nodecaddy_process_open_fds', 'Open file descriptors.', worker, fds));
  return families;
}
