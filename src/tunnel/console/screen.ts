// The status screen `nodecaddy tunnel` shows on a terminal, like ngrok's: the session's state, URLs,
// latency and counters at the top, updated in place, and the latest requests (with times) below. It runs
// on the terminal's alternate screen, which is given back as it was when the client ends (Ctrl-C too).
import type { ClientState, TunnelClient } from '../client.js';
import type { ExchangeSummary } from '../forward-http.js';
import { exchangeLine, tcpLine, type Output } from './lines.js';

export interface ScreenView {
  client: TunnelClient;
  version: string;
  inspectorUrl: string | undefined;
}

/** One line of the lower part: a request, a TCP connection or a status message, with its time. */
interface LogLine {
  at: Date;
  text: string;
}

const KEEP_LINES = 200;
const ESC = '\x1b[';
const ENTER = `${ESC}?1049h${ESC}?25l${ESC}H${ESC}2J`;
export const LEAVE = `${ESC}?25h${ESC}?1049l`;

const STATE_COLOR: Record<ClientState, string> = {
  online: '32',
  connecting: '33',
  reconnecting: '33',
  refused: '31',
  stopped: '31',
};

function clock(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function ms(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(v < 10 ? 1 : 0)}ms`;
}

/** The whole screen as lines, cut to the terminal's size. Pure: the tests render it directly. */
export function renderScreen(
  v: ScreenView,
  log: readonly LogLine[],
  cols: number,
  rows: number,
  color: boolean,
): string[] {
  const c = v.client;
  const paint = (code: string, text: string) => (color ? `${ESC}${code}m${text}${ESC}0m` : text);
  const field = (name: string, value: string) => `${name.padEnd(30)}${value}`;
  const t = c.traffic;
  const series = c.o.target.proto === 'tcp' ? c.conns : c.http;
  const lines = [
    `${paint('1', 'nodecaddy tunnel')}${'(Ctrl+C to quit)'.padStart(Math.max(0, cols - 16))}`,
    '',
    field(
      'Session Status',
      paint(STATE_COLOR[c.state], c.state) +
        (c.state !== 'online' && c.lastError ? `  (${c.lastError})` : ''),
    ),
    field('Version', v.version),
    field('Forwarding', `${c.publicUrl} -> ${c.targetUrl}`),
    field('Web Interface', v.inspectorUrl ?? 'off'),
    field('Latency', c.latencyMs === undefined ? '-' : ms(c.latencyMs)),
    field(
      'Traffic (server)',
      t
        ? `${c.o.target.proto === 'tcp' ? `${t.connections} connections` : `${t.requests} requests`}, in ${size(t.bytesIn)}, out ${size(t.bytesOut)}, ${t.openStreams} open`
        : '-',
    ),
    '',
    field('Connections', ['ttl', 'opn', 'rpm', 'p50', 'p90'].map((h) => h.padEnd(8)).join('')),
    field(
      '',
      [
        String(c.conns.count),
        String(c.conns.gauge),
        (series.rate(1) * 60).toFixed(0),
        ms(series.quantile(0.5)),
        ms(series.quantile(0.9)),
      ]
        .map((x) => x.padEnd(8))
        .join(''),
    ),
    '',
    c.o.target.proto === 'tcp' ? 'TCP Connections' : 'HTTP Requests',
    '-------------',
  ];
  const room = Math.max(0, rows - lines.length - 1);
  for (const line of log.slice(-room).reverse()) lines.push(`${clock(line.at)}  ${line.text}`);
  return lines.slice(0, Math.max(1, rows - 1)).map((l) => cut(l, cols));
}

/** At most `cols` visible characters (colour codes do not count). */
function cut(line: string, cols: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= cols) continue;
    out += line[i];
    visible++;
  }
  return out;
}

export function screenOutput(
  out: NodeJS.WriteStream,
  quiet: boolean,
  view: () => ScreenView | undefined,
): Output {
  const log: LogLine[] = [];
  let dirty = true;
  let closed = false;
  const add = (text: string) => {
    log.push({ at: new Date(), text });
    if (log.length > KEEP_LINES) log.splice(0, log.length - KEEP_LINES);
    dirty = true;
  };
  const draw = () => {
    const v = view();
    if (closed || !v) return;
    dirty = false;
    const lines = renderScreen(v, log, out.columns || 80, out.rows || 24, out.hasColors?.() ?? false);
    out.write(`${ESC}H${lines.map((l) => `${l}${ESC}K`).join('\n')}${ESC}J`);
  };
  const restore = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    out.write(LEAVE);
  };
  out.write(ENTER);
  // Redraw when something changed, at most ten times a second; and every second for the rates and times.
  let ticks = 0;
  const timer = setInterval(() => {
    if (dirty || ++ticks % 10 === 0) draw();
  }, 100);
  timer.unref();
  out.on('resize', () => {
    dirty = true;
  });
  process.once('exit', restore);
  return {
    info: add,
    exchange: (s: ExchangeSummary) => {
      if (!quiet) add(exchangeLine(s));
      else dirty = true;
    },
    tcp: (s) => {
      if (!quiet) add(tcpLine(s));
      else dirty = true;
    },
    changed: () => {
      dirty = true;
    },
    close: () => {
      draw();
      restore();
      // What the screen said last stays readable after the alternate screen is gone.
      const last = log[log.length - 1];
      if (last) out.write(`${last.text}\n`);
    },
  };
}
