// Config loads, as the process that loads them (the primary, or the only process) counts them.
import { registerCollector } from './registry.js';

let successes = 0;
let failures = 0;
let lastSuccess = 0;

/** The first config of the process loaded: the time of the last good config, not a reload. */
export function recordConfigLoaded(): void {
  lastSuccess = Date.now() / 1000;
}

/** A reload that was tried (not one skipped because nothing changed). */
export function recordConfigReload(ok: boolean): void {
  if (ok) {
    successes++;
    lastSuccess = Date.now() / 1000;
  } else failures++;
}

registerCollector(() =>
  lastSuccess === 0
    ? []
    : [
        {
          name: 'nodecaddy_config_reloads_total',
          help: 'Config reloads (on save, SIGUSR1 or POST /load) by result.',
          type: 'counter',
          labelNames: ['result'],
          merge: 'sum',
          series: [
            { labels: ['success'], value: successes },
            { labels: ['failure'], value: failures },
          ],
        },
        {
          name: 'nodecaddy_config_last_reload_success_timestamp_seconds',
          help: 'When the running config was loaded (Unix time).',
          type: 'gauge',
          labelNames: [],
          merge: 'sum',
          series: [{ labels: [], value: lastSuccess }],
        },
      ],
);
