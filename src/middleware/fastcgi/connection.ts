// One FastCGI connection: one request at a time (FCGI_KEEP_CONN), records in and out. pool.ts keeps them.
import type net from 'node:net';
import {
  decodeEndRequest,
  encodeGetValues,
  encodeRecord,
  encodeStream,
  RecordParser,
  RecordType,
  type ProtocolStatus,
} from './protocol.js';

/** The request id we use: one request per connection at a time, so always 1. */
const REQUEST_ID = 1;

/** What a new connection sends first; the worker that takes the connection answers it at once. */
const PROBE = encodeGetValues(['FCGI_MPXS_CONNS']);

export type Endpoint = { network: 'tcp'; host: string; port: number } | { network: 'unix'; path: string };

export interface ExchangeHandlers {
  /** STDOUT content: a view into the bytes read (valid for good: read buffers are never reused). */
  onStdout(data: Buffer): void;
  /** Every record of a read has been handled (and it held no END_REQUEST). */
  onReadEnd(): void;
  onStderr(data: Buffer): void;
  onEnd(appStatus: number, protocolStatus: ProtocolStatus): void;
  /** The connection failed or closed before END_REQUEST. */
  onError(err: Error): void;
}

export class FcgiConnection {
  readonly socket: net.Socket;
  /** Requests completed on this connection (0 while its first one runs). */
  completed = 0;
  /** Has any record of the current request's answer arrived? */
  answered = false;
  /** When the connection was made (performance.now()). */
  readonly since = performance.now();
  private readonly parser = new RecordParser();
  private handlers: ExchangeHandlers | undefined;
  private broken = false;
  private onProbeAnswer: (() => void) | undefined;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () =>
      this.fail(new Error('FastCGI connection closed before the end of the response')),
    );
  }

  /** Usable for another request. */
  get alive(): boolean {
    return !this.broken && !this.socket.destroyed && this.socket.writable;
  }

  /**
   * Sends FCGI_GET_VALUES; `answered` runs when the application replies, which php-fpm does as soon as a
   * worker has taken the connection (until then it waits in the listen queue).
   */
  probe(answered: () => void): void {
    this.onProbeAnswer = answered;
    this.socket.write(PROBE);
  }

  /**
   * Starts a request: `head` is encodeRequest()'s BEGIN_REQUEST, PARAMS and, without a body, the end of STDIN,
   * all in one write (a second one would wake the php-fpm worker, already waiting for STDIN, once more).
   */
  begin(head: Buffer, handlers: ExchangeHandlers): void {
    this.handlers = handlers;
    this.answered = false;
    this.socket.write(head);
  }

  /** Writes body bytes as STDIN records; false when the socket wants a 'drain' first. */
  writeStdin(chunk: Buffer): boolean {
    return this.socket.write(encodeStream(RecordType.Stdin, REQUEST_ID, chunk));
  }

  /** The empty STDIN record that ends the body. */
  endStdin(): void {
    this.socket.write(encodeRecord(RecordType.Stdin, REQUEST_ID));
  }

  /** Stops reading (client backpressure); the kernel then pushes back on php-fpm. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.broken = true;
    this.handlers = undefined;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk, (rec) => {
        if (rec.requestId === 0) {
          // A management record: the answer to the probe (GET_VALUES_RESULT, or UNKNOWN_TYPE from an
          // application that does not know GET_VALUES) says a worker reads this connection.
          const answered = this.onProbeAnswer;
          this.onProbeAnswer = undefined;
          answered?.();
          return;
        }
        const h = this.handlers;
        if (!h || rec.requestId !== REQUEST_ID) return; // a late record: not ours
        this.answered = true;
        switch (rec.type as RecordType) {
          case RecordType.Stdout:
            if (rec.content.length > 0) h.onStdout(rec.content);
            break;
          case RecordType.Stderr:
            if (rec.content.length > 0) h.onStderr(rec.content);
            break;
          case RecordType.EndRequest: {
            this.handlers = undefined;
            this.completed++;
            const { appStatus, protocolStatus } = decodeEndRequest(rec.content);
            h.onEnd(appStatus, protocolStatus);
            break;
          }
          default:
            break;
        }
      });
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    this.handlers?.onReadEnd();
  }

  private fail(err: Error): void {
    this.broken = true;
    const h = this.handlers;
    this.handlers = undefined;
    h?.onError(err);
  }
}

export function describe(ep: Endpoint): string {
  return ep.network === 'tcp' ? `${ep.host}:${ep.port}` : `unix:${ep.path}`;
}
