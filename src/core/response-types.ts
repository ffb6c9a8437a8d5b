// The shapes of the response-wrapping mechanism (core/response.ts): a response of either protocol, and what a
// response filter is given and gives back.
import type { OutgoingHttpHeaders } from 'node:http';

/**
 * A response of either protocol, as the chain sees it: what ServerResponse (HTTP/1.1) and Http2ServerResponse
 * (HTTP/2) have in common. Code that needs one protocol's extras (the socket of an HTTP/1.1 upgrade) checks
 * the class.
 */
export interface HttpResponse extends NodeJS.WritableStream {
  statusCode: number;
  statusMessage: string;
  readonly headersSent: boolean;
  readonly req: { readonly method?: string | undefined };
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  setHeader(name: string, value: number | string | readonly string[]): unknown;
  appendHeader(name: string, value: string | readonly string[]): unknown;
  getHeader(name: string): number | string | string[] | undefined;
  getHeaders(): OutgoingHttpHeaders;
  getHeaderNames(): string[];
  hasHeader(name: string): boolean;
  removeHeader(name: string): void;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
  writeHead(statusCode: number, statusMessage: string, headers?: OutgoingHttpHeaders): unknown;
  end(callback?: () => void): this;
  end(chunk: string | Uint8Array | undefined, callback?: () => void): this;
  end(chunk: string | Uint8Array, encoding: BufferEncoding, callback?: () => void): this;
  flushHeaders(): void;
  addTrailers(headers: OutgoingHttpHeaders): void;
  destroy(error?: Error): unknown;
}

/** Called once a written chunk is no longer referenced (Node's write callback). */
export type WriteDone = (err?: Error | null) => void;

/** Where a filter sends its output: the next filter down, or the wire. */
export interface BodyOut {
  /** Passes a chunk on; false when the transport below is full (wait for onDrain). */
  write(chunk: Buffer, done?: WriteDone): boolean;
  /** Ends the body, with a last chunk or none. */
  end(chunk?: Buffer): void;
  /** Sends the head now and makes bytes go out as written (flushHeaders, event streams). */
  flush(): void;
  /** Calls fn once the wire can take more (after a write that returned false). */
  onDrain(fn: () => void): void;
}

/** What a filter is told at the header moment. */
export interface HeadInfo {
  /** end() came before any body byte with nothing to send: the response has no body. */
  readonly emptyBody: boolean;
}

/** Returned by a head hook that keeps the response from going out (see `internal`). */
export const HOLD = Symbol('hold');

export interface ResponseFilter {
  /**
   * The header moment: status and headers may still change. Inner filters run first. Returning HOLD keeps
   * the head (and then the body, which this filter must discard) from going out; the filters below it do not
   * see it. A held response can be written again from the start after releaseHeld().
   */
  head?(res: HttpResponse, info: HeadInfo): void | typeof HOLD;
  /** A body chunk; pass it on with out.write (with `done` once the chunk is no longer referenced). */
  write?(chunk: Buffer, done: WriteDone | undefined, out: BodyOut): boolean;
  /** The end of the body; call out.end() when done, possibly later. */
  end?(chunk: Buffer | undefined, out: BodyOut): void;
  /** The producer called flushHeaders: its bytes should go out as written from now on. */
  flush?(out: BodyOut): void;
}
