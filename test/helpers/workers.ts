// Which process serves a connection, read from Linux's /proc: the server side of a TCP connection is a
// socket inode; the worker whose fd table holds that inode is the one serving it. Nothing in the server
// has to tell (no debug header, no test hook).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';

/** Pids whose parent is `ppid`. */
export function childPids(ppid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses, so split after the last ')'.
      const ppidField = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (Number(ppidField) === ppid) pids.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids.sort((a, b) => a - b);
}

/** The inode of the server side of the connection from client port `clientPort` to `serverPort`. */
function serverInode(serverPort: number, clientPort: number): string | undefined {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1].endsWith(`:${hex(serverPort)}`) && f[2].endsWith(`:${hex(clientPort)}`)) return f[9];
    }
  }
  return undefined;
}

/** The pid among `pids` that holds the server side of `socket` (connected to `serverPort`). */
export function servingPid(
  socket: net.Socket,
  serverPort: number,
  pids: readonly number[],
): number | undefined {
  const inode = serverInode(serverPort, socket.localPort!);
  if (!inode) return undefined;
  const target = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return undefined;
}

/** One keep-alive connection that has sent `GET path` and read a whole (small, Content-Length) response. */
export function getOnNewConnection(
  port: number,
  path: string,
): Promise<{ socket: net.Socket; body: string; status: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('response timed out')));
    socket.on('data', (d: string) => {
      data += d;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? NaN);
      if (data.length - end - 4 < length) return;
      socket.setTimeout(0);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? NaN);
      resolve({ socket, body: data.slice(end + 4, end + 4 + length), status });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

/**
 * Opens connections (holding them open, so each new one is a new accept) until every worker has served
 * at least one, or `max` connections. Returns the bodies seen per serving pid.
 */
export async function bodiesPerWorker(
  port: number,
  path: string,
  workers: readonly number[],
  max = 200,
): Promise<Map<number, Set<string>>> {
  const seen = new Map<number, Set<string>>();
  const open: net.Socket[] = [];
  try {
    for (let i = 0; i < max && seen.size < workers.length; i++) {
      const { socket, body } = await getOnNewConnection(port, path);
      open.push(socket);
      const pid = servingPid(socket, port, workers);
      if (pid === undefined) continue;
      if (!seen.has(pid)) seen.set(pid, new Set());
      seen.get(pid)!.add(body);
    }
  } finally {
    for (const s of open) s.destroy();
  }
  return seen;
}
