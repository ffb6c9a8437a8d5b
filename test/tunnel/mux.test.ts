// The tunnel's own multiplexer (protocol 3): frame parsing, a peer that breaks the protocol, many streams at
// once, and flow control, over real WebSockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  CONTROL,
  CREDIT,
  DATA,
  END,
  FrameReader,
  headPayload,
  MAX_PAYLOAD,
  OPEN,
  REPLY,
  RESET,
  frameHeader,
  splitHead,
} from '../../src/tunnel/frames.js';
import { MuxStream, STREAM_WINDOW } from '../../src/tunnel/mux-stream.js';
import { LINK_WINDOW, type Mux } from '../../src/tunnel/mux.js';
import { StreamDuplex } from '../../src/tunnel/stream-duplex.js';
import { READ_GC_BYTES } from '../../src/core/read-gc.js';
import { waitFor } from '../helpers/http.js';
import { withCountingGc } from '../helpers/gc.js';
import { frame, muxPair, muxServer, rawPeer, type MuxServer } from './mux-pair.js';

type Parsed = [type: number, flags: number, stream: number, payload: string];

/**
 * The frames `chunks` hold. A DATA frame spread over chunks comes in pieces: they are joined here again
 * (the tests' frame lists have one DATA frame per stream, so consecutive DATA of a stream is one frame).
 */
function parseAll(chunks: Buffer[]): Parsed[] {
  const out: Parsed[] = [];
  let open: Parsed | undefined;
  const reader = new FrameReader((type, flags, stream, payload) => {
    const hex = payload.toString('hex');
    if (type === DATA && open && open[2] === stream) {
      assert.equal(open[1] & END, 0, 'END comes only with the last piece');
      open[1] = flags;
      open[3] += hex;
      return;
    }
    const parsed: Parsed = [type, flags, stream, hex];
    open = type === DATA ? parsed : undefined;
    out.push(parsed);
  });
  for (const c of chunks) reader.push(c);
  return out;
}

test('frames split at every byte boundary, or fed byte by byte, parse the same', () => {
  const frames = [
    frame(OPEN, 0, 1, Buffer.concat(headPayload(['GET', '/', 'x', '', []], Buffer.from('body')))),
    frame(DATA, END, 1), // a header alone
    frame(CREDIT, 0, 3, Buffer.from([0, 1, 0, 0])),
    frame(DATA, 0, 3, randomBytes(300)),
    frame(RESET, 0, 5, Buffer.from('cancel')),
    frame(CONTROL, 0, 0, Buffer.from('{"type":"online"}')),
  ];
  const bytes = Buffer.concat(frames);
  const whole = parseAll([bytes]);
  assert.equal(whole.length, frames.length);
  assert.deepEqual(splitHead(Buffer.from(whole[0][3], 'hex')).body.toString(), 'body');
  for (let i = 1; i < bytes.length; i++) {
    assert.deepEqual(parseAll([bytes.subarray(0, i), bytes.subarray(i)]), whole, `split at ${i}`);
  }
  // Three pieces: the second cut at every point after the first.
  for (let i = 1; i < bytes.length; i += 7) {
    for (let j = i + 1; j < bytes.length; j++) {
      const pieces = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
      assert.deepEqual(parseAll(pieces), whole, `split at ${i} and ${j}`);
    }
  }
  const oneByOne = [...bytes].map((b) => Buffer.from([b]));
  assert.deepEqual(parseAll(oneByOne), whole);
  // A payload that comes alone right after its header (how bulk DATA is written).
  const big = randomBytes(200_000);
  assert.deepEqual(parseAll([frameHeader(DATA, 0, 7, big.length), big]), [[DATA, 0, 7, big.toString('hex')]]);
});

test('a DATA frame over several chunks comes in pieces that are views into them, END on the last only', () => {
  const payload = randomBytes(1000);
  const bytes = Buffer.concat([
    frame(CREDIT, 0, 3, Buffer.from([0, 1, 0, 0])),
    frame(DATA, END, 5, payload),
    frame(RESET, 0, 5, Buffer.from('cancel')),
  ]);
  const dataAt = 14 + 10;
  for (let i = 1; i < bytes.length; i++) {
    for (const j of [i + 1, i + 7, i + 500, bytes.length]) {
      if (j > bytes.length) continue;
      // Fresh chunks: a piece must be a view into the one it came in, not a copy.
      const chunks = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)].map((c) =>
        Buffer.from(c),
      );
      const frames: { type: number; flags: number; payload: Buffer }[] = [];
      const reader = new FrameReader((type, flags, _stream, p) => frames.push({ type, flags, payload: p }));
      for (const c of chunks) reader.push(c);
      const data = frames.filter((f) => f.type === DATA);
      const others = frames.filter((f) => f.type !== DATA);
      assert.deepEqual(
        others.map((f) => [f.type, f.payload.toString('hex')]),
        [
          [CREDIT, '00010000'],
          [RESET, Buffer.from('cancel').toString('hex')],
        ],
        `cut at ${i} and ${j}: other frames whole`,
      );
      assert.deepEqual(Buffer.concat(data.map((f) => f.payload)), payload, `cut at ${i} and ${j}`);
      // As many pieces as chunks the payload touches, none empty.
      const touched = [0, i, j].filter((start, k) => {
        const end = [i, j, bytes.length][k];
        return end > dataAt && start < dataAt + payload.length && end > start;
      }).length;
      assert.equal(data.length, touched, `cut at ${i} and ${j}: one piece per chunk`);
      data.forEach((f, k) => {
        assert.ok(f.payload.length > 0);
        assert.equal(f.flags, k === data.length - 1 ? END : 0, `cut at ${i} and ${j}: piece ${k}'s flags`);
        const p = f.payload;
        const inside = (c: Buffer) =>
          c.buffer === p.buffer &&
          p.byteOffset >= c.byteOffset &&
          p.byteOffset + p.length <= c.byteOffset + c.length;
        assert.ok(chunks.some(inside), `cut at ${i} and ${j}: piece ${k} is a view into a chunk, not a copy`);
      });
    }
  }
});

/** The opener side of a stream: sends `head`, collects the reply's body. */
function open(mux: Mux, head: unknown, end = false): { duplex: StreamDuplex; replied: Promise<unknown> } {
  const stream = new MuxStream(mux);
  stream.open(head, end);
  const duplex = new StreamDuplex(stream);
  // Failures are asserted where a test expects them; a link closed at the end of a test is no failure.
  duplex.on('error', () => undefined);
  const replied = new Promise<unknown>((resolve) => {
    stream.onReply = (h, body, bodyEnd) => {
      duplex.deliver(body, bodyEnd);
      resolve(h);
    };
  });
  return { duplex, replied };
}

/** The acceptor side: 'echo' streams answer with their request body; 'stall' streams are never read. */
function serve(mux: Mux, stalled: StreamDuplex[] = []): void {
  mux.onOpen = (id, flags, payload) => {
    const stream = new MuxStream(mux, id);
    const { head, body } = splitHead(payload);
    const end = (flags & END) !== 0;
    stream.accepted(body.length, end);
    const duplex = new StreamDuplex(stream);
    duplex.on('error', () => undefined);
    duplex.deliver(body, end);
    stream.reply(['ok', head], undefined, false);
    if (Array.isArray(head) && head[0] === 'stall') stalled.push(duplex);
    else duplex.pipe(duplex);
  };
}

async function collect(duplex: StreamDuplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of duplex) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function echo(mux: Mux, body: Buffer): Promise<Buffer> {
  const { duplex, replied } = open(mux, ['echo']);
  duplex.end(body);
  await replied;
  return collect(duplex);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `promise`, or a failure saying what did not come within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe('the mux between two processes', () => {
  let server: MuxServer;
  before(async () => {
    server = await muxServer();
  });
  after(() => server.close());

  test('300 streams at once: each gets its own bytes back, none crossed', async () => {
    const pair = await muxPair(server);
    try {
      serve(pair.acceptor);
      const bodies = Array.from({ length: 300 }, (_, i) =>
        // Sizes from empty to several DATA frames, so that frames of many streams interleave.
        randomBytes(i % 10 === 0 ? 0 : Math.floor(Math.random() * 600_000)),
      );
      const answers = await within(
        Promise.all(bodies.map((b) => echo(pair.opener, b))),
        30_000,
        'every answer',
      );
      answers.forEach((a, i) => assert.equal(sha(a), sha(bodies[i]), `stream ${i}`));
      assert.equal(pair.opener.streamCount, 0, 'every stream is over at the opener');
      assert.equal(pair.acceptor.streamCount, 0, 'and at the acceptor');
    } finally {
      pair.close();
    }
  });

  test("a link's received bytes (fresh socket reads) bring a minor collection every READ_GC_BYTES", async () => {
    const pair = await muxPair(server);
    try {
      serve(pair.acceptor);
      const body = randomBytes(3 * READ_GC_BYTES);
      await withCountingGc(async (calls) => {
        const answer = await within(echo(pair.opener, body), 30_000, 'the echo');
        assert.equal(sha(answer), sha(body));
        // Both ends are in this process: the body is received twice (there and back), 6 x READ_GC_BYTES.
        // (A full collection may come too, when an earlier test's reads went quiet.)
        const minors = calls.filter((c) => (c as { type: string }).type === 'minor').length;
        assert.ok(minors >= 5, `${minors} minor collections`);
      });
    } finally {
      pair.close();
    }
  });

  test('a receiver that stops reading bounds what the sender buffers; reading again gets it all', async () => {
    const pair = await muxPair(server);
    try {
      const stalled: StreamDuplex[] = [];
      serve(pair.acceptor, stalled);
      const total = 16 * 1024 * 1024;
      let produced = 0;
      const source = new Readable({
        read() {
          if (produced >= total) {
            this.push(null);
            return;
          }
          produced += 64 * 1024;
          this.push(Buffer.alloc(64 * 1024, 7));
        },
      });
      const { duplex, replied } = open(pair.opener, ['stall']);
      source.pipe(duplex);
      await replied;
      const receiver = await waitFor(() => stalled[0], 5000, 'the stream at the acceptor');
      await waitFor(() => receiver.readableLength >= STREAM_WINDOW, 10_000, 'a window of bytes');
      // Another stream still crosses the link meanwhile, and behind its answer no frame of the first is
      // still on its way.
      assert.equal((await echo(pair.opener, Buffer.from('meanwhile'))).toString(), 'meanwhile');
      assert.equal(receiver.readableLength, STREAM_WINDOW, 'the receiver holds one window, no more');
      assert.ok(produced <= STREAM_WINDOW + 1024 * 1024, `the sender read ${produced} bytes of its source`);
      const got = await collect(receiver);
      assert.equal(got.length, total);
    } finally {
      pair.close();
    }
  });

  test('streams that are not read hold one link window at most; control frames still pass', async () => {
    const pair = await muxPair(server);
    try {
      const stalled: StreamDuplex[] = [];
      serve(pair.acceptor, stalled);
      const controls: string[] = [];
      pair.acceptor.onControl = (payload) => controls.push(payload.toString());
      // More streams than the link window has room for, each with more than its own window to send.
      const streams = LINK_WINDOW / STREAM_WINDOW + 2;
      const chunk = Buffer.alloc(256 * 1024, 1);
      for (let i = 0; i < streams; i++) {
        const { duplex } = open(pair.opener, ['stall']);
        let left = STREAM_WINDOW + chunk.length;
        new Readable({
          read() {
            left -= chunk.length;
            this.push(left >= 0 ? chunk : null);
          },
        }).pipe(duplex);
      }
      const held = () => stalled.reduce((n, d) => n + d.readableLength, 0);
      await waitFor(() => stalled.length === streams && held() >= LINK_WINDOW, 10_000, 'a link window held');
      pair.opener.send(CONTROL, 0, 0, Buffer.from('still there'));
      await waitFor(() => controls.includes('still there'), 5000, 'the control frame');
      assert.equal(held(), LINK_WINDOW, 'the acceptor holds one link window, no more');
      // Reading the stalled streams lets everything through.
      const got = await Promise.all(stalled.map((d) => collect(d)));
      for (const g of got) assert.equal(g.length, STREAM_WINDOW + chunk.length);
    } finally {
      pair.close();
    }
  });

  describe('a peer that breaks the protocol is cut (close code 1002), and only that peer', () => {
    let good: Awaited<ReturnType<typeof muxPair>>;
    before(async () => {
      good = await muxPair(server);
      serve(good.acceptor);
    });
    after(() => good.close());

    /** A raw peer with one stream open to it (stream 1, as the server opens them). */
    async function brokenPeer() {
      const peer = await rawPeer(server);
      const { duplex } = open(peer.link.mux, ['GET', '/', 'x', '', []], true);
      const abandoned = new Promise<Error>((resolve) => duplex.once('error', resolve));
      await waitFor(() => peer.received.some((f) => f.type === OPEN && f.stream === 1), 5000, 'the OPEN');
      return { ...peer, abandoned };
    }

    const cases: [string, (peer: Awaited<ReturnType<typeof brokenPeer>>) => void, RegExp][] = [
      [
        'a frame longer than MAX_PAYLOAD',
        (p) => p.send(frameHeader(DATA, 0, 1, MAX_PAYLOAD + 1), Buffer.alloc(100)),
        /^protocol error: frame too long$/,
      ],
      ['an unknown frame type', (p) => p.send(frame(9, 0, 1, Buffer.from('?'))), /unknown frame type 9/],
      [
        'DATA for a stream never opened',
        (p) => p.send(frame(DATA, 0, 7, Buffer.from('x'))),
        /frame type 3 for stream 7, which was never opened/,
      ],
      [
        'more than the window',
        (p) => {
          p.send(frame(REPLY, 0, 1, Buffer.concat(headPayload([200, []], undefined))));
          const mb = Buffer.alloc(1024 * 1024);
          for (let sent = 0; sent < STREAM_WINDOW; sent += mb.length) p.send(frame(DATA, 0, 1, mb));
          p.send(frame(DATA, 0, 1, Buffer.from('!')));
        },
        /stream 1 sent beyond its window/,
      ],
      [
        'a head that is not JSON',
        (p) => {
          const payload = Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('nope{')]);
          p.send(frame(REPLY, 0, 1, payload));
        },
        /head is not JSON/,
      ],
    ];
    for (const [what, send, reason] of cases) {
      test(what, async () => {
        const peer = await brokenPeer();
        send(peer);
        const closed = await within(peer.closed, 5000, 'the close of the link');
        assert.equal(closed.code, 1002);
        assert.match(closed.reason, reason);
        assert.match(peer.link.reasons.join(), reason);
        // The stream on that link learnt it is lost, and why.
        assert.match((await within(peer.abandoned, 5000, 'the stream error')).message, reason);
        assert.equal(peer.link.mux.closed, true);
        // Others are served as before.
        assert.equal((await echo(good.opener, Buffer.from(what))).toString(), what);
      });
    }
  });
});
