// A FastCGI peer on a real socket that schedules connections as php-fpm does: `children` workers, each
// taking the oldest connection waiting in the listen queue and serving it until it closes; a connection no
// worker has taken is not read. Workers answer FCGI_GET_VALUES at once (unless told not to), and each request
// (on the end of its STDIN) with `body` on STDOUT, at once or when the test lets it go.
import net from 'node:net';
import {
  encodeParams,
  encodeRecord,
  encodeStream,
  HEADER_LEN,
  RecordParser,
  RecordType,
} from '../../../src/middleware/fastcgi/protocol.js';

/** END_REQUEST content: appStatus 0, FCGI_REQUEST_COMPLETE. */
const END_OK = Buffer.alloc(8);

/** GET_VALUES_RESULT saying the application does not multiplex, as php-fpm answers. */
const PROBE_ANSWER = (() => {
  const params = encodeParams(0, [['FCGI_MPXS_CONNS', '0']]);
  const pairs = params.subarray(HEADER_LEN, HEADER_LEN + params.readUInt16BE(4));
  return encodeRecord(RecordType.GetValuesResult, 0, pairs);
})();

export interface FakeConnection {
  readonly socket: net.Socket;
  /** Bytes that arrived before a worker took the connection. */
  readonly beforeTaken: Buffer[];
  /** Requests answered on this connection. */
  served: number;
  /** Requests whose STDIN ended and whose answer is held (hold mode). */
  readonly held: number[];
}

export interface FakeFpmOptions {
  children: number;
  body?: string;
  /** Answers wait for release() instead of going out at once. */
  hold?: boolean;
  /** Workers ignore FCGI_GET_VALUES (an application that does not answer probes). */
  ignoreProbes?: boolean;
}

export class FakeFpm {
  readonly server: net.Server;
  /** Connections waiting for a worker, oldest first. */
  readonly queue: FakeConnection[] = [];
  /** Connections a worker has taken. */
  readonly taken = new Set<FakeConnection>();
  /** Every connection accepted by the socket, in order. */
  readonly all: FakeConnection[] = [];
  private readonly opts: Required<FakeFpmOptions>;
  /** The 'data' listener of a connection still in the queue (it only collects). */
  private readonly collectors = new Map<FakeConnection, (d: Buffer) => void>();

  private constructor(opts: FakeFpmOptions) {
    this.opts = { body: 'hello', hold: false, ignoreProbes: false, ...opts };
    this.server = net.createServer((socket) => this.onConnection(socket));
  }

  static async start(opts: FakeFpmOptions): Promise<FakeFpm> {
    const fpm = new FakeFpm(opts);
    await new Promise<void>((resolve) => fpm.server.listen(0, '127.0.0.1', resolve));
    return fpm;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Requests answered so far, over all connections. */
  get served(): number {
    return this.all.reduce((n, c) => n + c.served, 0);
  }

  /** Requests held, over all connections. */
  get heldCount(): number {
    return this.all.reduce((n, c) => n + c.held.length, 0);
  }

  /** Sends the answer of the oldest held request (hold mode). */
  releaseOne(): void {
    const conn = this.all.find((c) => c.held.length > 0);
    if (!conn) throw new Error('no request is held');
    this.answer(conn, conn.held.shift()!);
  }

  close(): Promise<void> {
    for (const c of this.all) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const conn: FakeConnection = { socket, beforeTaken: [], served: 0, held: [] };
    this.all.push(conn);
    socket.on('error', () => {});
    socket.on('close', () => {
      const i = this.queue.indexOf(conn);
      if (i >= 0) this.queue.splice(i, 1);
      // A worker whose connection closed takes the next one waiting.
      if (this.taken.delete(conn)) this.schedule();
    });
    const collect = (d: Buffer) => conn.beforeTaken.push(d);
    socket.on('data', collect);
    this.collectors.set(conn, collect);
    this.queue.push(conn);
    this.schedule();
  }

  private schedule(): void {
    while (this.taken.size < this.opts.children && this.queue.length > 0) {
      const conn = this.queue.shift()!;
      this.taken.add(conn);
      this.serve(conn);
    }
  }

  private serve(conn: FakeConnection): void {
    const parser = new RecordParser();
    const onRecords = (chunk: Buffer) =>
      parser.push(chunk, (rec) => {
        if ((rec.type as RecordType) === RecordType.GetValues) {
          if (!this.opts.ignoreProbes) conn.socket.write(PROBE_ANSWER);
          return;
        }
        if ((rec.type as RecordType) !== RecordType.Stdin || rec.content.length > 0) return;
        if (this.opts.hold) conn.held.push(rec.requestId);
        else this.answer(conn, rec.requestId);
      });
    conn.socket.removeListener('data', this.collectors.get(conn)!);
    this.collectors.delete(conn);
    for (const d of conn.beforeTaken) onRecords(d);
    conn.socket.on('data', onRecords);
  }

  private answer(conn: FakeConnection, requestId: number): void {
    conn.served++;
    conn.socket.write(
      Buffer.concat([
        encodeStream(RecordType.Stdout, requestId, Buffer.from(this.opts.body)),
        encodeRecord(RecordType.EndRequest, requestId, END_OK),
      ]),
    );
  }
}
