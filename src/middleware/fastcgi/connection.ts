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
  type RecordSink,
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
  /** Nothing was read for the time given to armRead(). */
  onReadTimeout?(): void;
}

export class FcgiConnection implements RecordSink {
  readonly socket: net.Socket;
  /** Requests completed on this connection (0 while its first one runs). */
  completed = 0;
  /** Has any record of the current request's answer arrived? */
  answered = false;
  /** When the connection was made (performance.now()). */
  readonly since = performance.now();
  /** When it was last given back to the pool unused (performance.now()). */
  idleSince = 0;
  private readonly parser = new RecordParser();
  private handlers: ExchangeHandlers | undefined;
  private broken = false;
  private onProbeAnswer: (() => void) | undefined;
  /**
   * The read deadline: one timer for the connection's life, re-armed for each request and read (a timer
   * per request cost more). Left running once a request ends, it finds no handlers when it fires.
   */
  private readTimer: NodeJS.Timeout | undefined;
  private readTimerMs = 0;

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

  /** (Re)starts the read deadline of the running request: onReadTimeout after `ms` without a call. */
  armRead(ms: number): void {
    const timer = this.readTimer;
    if (timer && this.readTimerMs === ms) {
      timer.refresh();
      return;
    }
    clearTimeout(timer);
    this.readTimerMs = ms;
    this.readTimer = setTimeout(() => this.handlers?.onReadTimeout?.(), ms);
    // Open sockets keep the process alive; this timer on an idle connection should not.
    this.readTimer.unref();
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
    clearTimeout(this.readTimer);
    this.broken = true;
    this.handlers = undefined;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.feed(chunk, this);
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    this.handlers?.onReadEnd();
  }

  /** A record read (RecordSink: the parser calls it). */
  record(type: number, requestId: number, content: Buffer): void {
    if (requestId === 0) {
      // A management record: the answer to the probe (GET_VALUES_RESULT, or UNKNOWN_TYPE from an
      // application that does not know GET_VALUES) says a worker reads this connection.
      const answered = this.onProbeAnswer;
      this.onProbeAnswer = undefined;
      answered?.();
      return;
    }
    const h = this.handlers;
    if (!h || requestId !== REQUEST_ID) return; // a late record: not ours
    this.answered = true;
    switch (type as RecordType) {
      case RecordType.Stdout:
        if (content.length > 0) h.onStdout(content);
        break;
      case RecordType.Stderr:
        if (content.length > 0) h.onStderr(content);
        break;
      case RecordType.EndRequest: {
        this.handlers = undefined;
        this.completed++;
        const { appStatus, protocolStatus } = decodeEndRequest(content);
        h.onEnd(appStatus, protocolStatus);
        break;
      }
      default:
        break;
    }
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
