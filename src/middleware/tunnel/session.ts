// One connected tunnel client, seen from the public server: a mux over its WebSocket, where each visitor
// request (or TCP connection) is one stream. Lives in the process-wide registry, not in a config
// generation, so a reload that keeps the site keeps it.
import type { Duplex, Readable } from 'node:stream';
import { clientIp } from '../../core/forwarded.js';
import { requestWire, responseOf } from '../../tunnel/headers.js';
import type { LinkSocket } from '../../tunnel/link.js';
import type { Mux } from '../../tunnel/mux.js';
import type { TrafficCounters } from '../../tunnel/protocol.js';
import { MuxStream, streamError } from '../../tunnel/mux-stream.js';
import { StreamDuplex } from '../../tunnel/stream-duplex.js';
import { heartbeat, ignoreError, joinHalfOpen } from '../../tunnel/transport.js';
import { ControlChannel } from './control.js';
import { awaitReply, sendRequest } from './exchange.js';
import type { TunnelSettings } from './options.js';
import {
  TunnelError,
  type Exchange,
  type Forwarded,
  type Upgraded,
  type Upstream,
  type Visitor,
} from './relay.js';
import type { TcpPort } from './tcp.js';
import type { VisitorAuth } from './visitor-auth.js';

/** The bytes a tunnel's connection has carried, as its socket counts them. */
export interface ByteCounter {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** One tunnel's traffic, for the client (control stream), the log at its end, and the server's metrics. */
export interface TunnelTraffic extends TrafficCounters {
  /** The public host (`alice.tunnel.example.com`): the tunnel's name. */
  name: string;
  proto: 'http' | 'tcp';
  /** The public TCP port of a TCP tunnel. */
  port?: number;
  /** The client's address. */
  remote: string;
  /** When the session was established. */
  since: Date;
  /** Links to the client: this one and those of other server processes (joins) still open. */
  links: number;
}

/** A join's traffic as its process last reported it; `open` until its link (or report stream) ends. */
export interface LinkReport {
  traffic: TrafficCounters;
  open: boolean;
}

export interface SessionInit {
  host: string;
  token: string;
  secretId: string;
  remote: string;
  ws: LinkSocket;
  mux: Mux;
  settings: () => TunnelSettings;
  /** The socket under the WebSocket, whose byte counts are the tunnel's traffic. */
  transport: ByteCounter;
  /** Visitors must present these (the client's -basic-auth). */
  auth?: VisitorAuth;
  /** A TCP tunnel's public port; its connections become CONNECT streams. */
  tcp?: TcpPort;
  /** One more link of a client whose name another process of this server holds (a join). */
  joined?: boolean;
}

/** An idle stream is cancelled after this many looks in a row found it quiet (looks every idle_timeout/4). */
const QUIET_LOOKS = 4;

export class TunnelSession implements Upstream {
  readonly host: string;
  readonly token: string;
  /** Which configured secret the client presented (a hash), for the per-secret session limit. */
  readonly secretId: string;
  readonly remote: string;
  readonly tcp: TcpPort | undefined;
  readonly joined: boolean;
  readonly since = new Date();
  private readonly ws: LinkSocket;
  private readonly mux: Mux;
  private readonly settings: () => TunnelSettings;
  private readonly transport: ByteCounter;
  private readonly auth: VisitorAuth | undefined;
  private control: ControlChannel | undefined;
  /** HTTP requests and upgrades in progress: cancelled when quiet for idle_timeout (TCP connections never). */
  private readonly quiet = new Set<MuxStream>();
  private readonly idleSweep: NodeJS.Timeout | undefined;
  private openStreams = 0;
  private requests = 0;
  private connections = 0;
  private closedFlag = false;
  private readonly onClosed: ((session: TunnelSession, reason: string) => void)[] = [];
  /** The joined links of this client in other processes (their traffic is part of this tunnel's). */
  private readonly joins: LinkReport[] = [];
  private readonly stopHeartbeat: () => void;

  constructor(init: SessionInit) {
    this.host = init.host;
    this.token = init.token;
    this.secretId = init.secretId;
    this.remote = init.remote;
    this.ws = init.ws;
    this.mux = init.mux;
    this.settings = init.settings;
    this.transport = init.transport;
    this.auth = init.auth;
    this.tcp = init.tcp;
    this.joined = init.joined ?? false;
    this.stopHeartbeat = heartbeat(this.ws, this.settings().pingIntervalMs, () =>
      this.close('no answer to heartbeat'),
    );
    this.ws.once('close', () => this.close('connection closed'));
    const idleMs = this.settings().idleTimeoutMs;
    if (idleMs > 0) {
      this.idleSweep = setInterval(() => this.sweep(), Math.max(idleMs / QUIET_LOOKS, 10));
      this.idleSweep.unref();
    }
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get proto(): 'http' | 'tcp' {
    return this.tcp ? 'tcp' : 'http';
  }

  /**
   * What the tunnel has carried so far over all its links (bytes include the tunnel's own framing): this
   * link's counts and what the joined links last reported.
   */
  traffic(): TunnelTraffic {
    const t: TunnelTraffic = {
      name: this.host,
      proto: this.proto,
      ...(this.tcp && { port: this.tcp.port }),
      remote: this.remote,
      since: this.since,
      ...this.linkTraffic(),
      links: 1,
    };
    for (const join of this.joins) {
      t.requests += join.traffic.requests;
      t.connections += join.traffic.connections;
      t.bytesIn += join.traffic.bytesIn;
      t.bytesOut += join.traffic.bytesOut;
      if (join.open) {
        t.openStreams += join.traffic.openStreams;
        t.links++;
      }
    }
    return t;
  }

  /** What this link alone has carried (a process's own share, for its metrics and a join's reports). */
  linkTraffic(): TrafficCounters {
    return {
      requests: this.requests,
      connections: this.connections,
      bytesIn: this.transport.bytesWritten,
      bytesOut: this.transport.bytesRead,
      openStreams: this.openStreams,
    };
  }

  /** A joined link of this client in another process: its reports go into the returned entry. */
  addJoin(): LinkReport {
    const join = {
      traffic: { requests: 0, connections: 0, bytesIn: 0, bytesOut: 0, openStreams: 0 },
      open: true,
    };
    this.joins.push(join);
    return join;
  }

  /**
   * Registered: tell the client it is online (with its TCP port, or how many links an HTTP tunnel should
   * have: one per server process), then its traffic as it changes (over all links: a join reports its share
   * to the holding process, not to the client).
   */
  goOnline(): void {
    if (this.closedFlag) return;
    this.control = new ControlChannel(this.mux, () => this.traffic());
    const workers = this.settings().workers;
    this.control.send({
      type: 'online',
      proto: this.proto,
      host: this.host,
      ...(this.tcp && { port: this.tcp.port }),
      ...(!this.tcp && workers > 1 && { links: workers }),
    });
    this.tcp?.serve((socket) => this.openTcp(socket, clientIp(socket.remoteAddress)));
  }

  onClose(listener: (session: TunnelSession, reason: string) => void): void {
    this.onClosed.push(listener);
  }

  /** Ends the session: the client sees the WebSocket close (and reconnects, unless it is stopping). */
  close(reason: string, code = 1000): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.stopHeartbeat();
    clearInterval(this.idleSweep);
    this.control?.close();
    void this.tcp?.close();
    this.mux.lost(`the tunnel for ${this.host} closed (${reason})`);
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason.slice(0, 120));
    else this.ws.terminate();
    // A peer that does not finish the close handshake is cut.
    setTimeout(() => this.ws.terminate(), 2000).unref();
    for (const listener of this.onClosed) listener(this, reason);
  }

  request(fwd: Forwarded, body: Readable | null, visitor: Visitor): Promise<Exchange> {
    this.admit(fwd);
    const sent = sendRequest(this.mux, fwd, body);
    this.counted(sent.stream, 'request');
    const timeoutMs = this.settings().responseTimeoutMs;
    return awaitReply(sent, visitor, this.host, timeoutMs, () => sent.duplex && body?.unpipe(sent.duplex));
  }

  async upgrade(fwd: Forwarded, visitor: Visitor): Promise<Upgraded | Exchange> {
    this.admit(fwd);
    const sent = sendRequest(this.mux, fwd, null);
    this.counted(sent.stream, 'request');
    const answer = await awaitReply(sent, visitor, this.host, this.settings().responseTimeoutMs);
    // The client sends the target's 101 along; anything else is the target's refusal.
    if (answer.status === 101 && answer.body instanceof StreamDuplex) {
      return { status: 101, headers: answer.headers, stream: answer.body };
    }
    return answer;
  }

  /** An HTTP request may enter this tunnel: it carries HTTP, the visitor has its credentials, there is room. */
  private admit(fwd: Forwarded): void {
    if (this.tcp) {
      throw new TunnelError(502, 'no-tunnel', `${this.host} is a TCP tunnel (port ${this.tcp.port})`);
    }
    this.auth?.check(fwd);
    this.checkOpen();
  }

  /** Throws unless the session can take one more stream. */
  private checkOpen(): void {
    if (this.closedFlag || this.mux.closed) {
      throw new TunnelError(502, 'no-tunnel', `no tunnel client is connected for ${this.host}`);
    }
    const max = this.settings().maxStreams;
    if (this.openStreams >= max) {
      throw new TunnelError(
        503,
        'tunnel-busy',
        `the tunnel for ${this.host} is carrying its limit of ${max} requests`,
      );
    }
  }

  /** The stream counts as open until it is over. */
  private counted(stream: MuxStream, kind: 'request' | 'connection'): void {
    this.openStreams++;
    if (kind === 'request') {
      this.requests++;
      this.quiet.add(stream);
    } else this.connections++;
    stream.onClose = () => {
      this.openStreams--;
      this.quiet.delete(stream);
    };
  }

  /** Cancels the requests and upgrades with no frame either way for idle_timeout. */
  private sweep(): void {
    for (const stream of this.quiet) {
      if (stream.look() >= QUIET_LOOKS) {
        stream.abort(streamError(`no traffic on ${this.host} for the idle timeout`, 'idle'));
      }
    }
  }

  /**
   * One TCP connection on the tunnel's public port: a CONNECT stream to the client, joined to the socket
   * both ways. No idle timeout: an SSH session may rightly sit quiet for hours (TCP keep-alive finds the dead).
   * `socket` is the visitor's connection, or a relay stream from another instance that accepted it there.
   */
  openTcp(socket: Duplex, remote: string): void {
    try {
      this.checkOpen();
    } catch {
      socket.destroy();
      return;
    }
    const stream = new MuxStream(this.mux);
    stream.open(
      requestWire({
        method: 'CONNECT',
        path: '',
        authority: `${this.host}:${this.tcp?.port ?? 0}`,
        headers: { 'x-forwarded-for': remote },
      }),
      false,
    );
    this.counted(stream, 'connection');
    const duplex = new StreamDuplex(stream);
    duplex.on('error', ignoreError);
    stream.onReply = (wire, body, end) => {
      let ok = false;
      try {
        ok = responseOf(wire).status === 200;
      } catch {
        // A broken head: refused like any other answer than 200.
      }
      if (!ok) {
        stream.consumed(body.length);
        socket.destroy();
        duplex.destroy();
        return;
      }
      duplex.deliver(body, end);
    };
    joinHalfOpen(socket, duplex);
  }
}
