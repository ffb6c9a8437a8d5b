// Memory for packed exchanges, carved out of a few 64 KB chunks that are reused once every record in them
// has gone. Why not a buffer each: small buffers come from Node's 8 KB pool, a fresh ArrayBuffer every
// ~15 exchanges, and V8 counts every ArrayBuffer allocated toward its next full collection: under small
// answers on Node 26 that alone brought one every ~1.5 s (none with chunks that are reused).
const CHUNK_BYTES = 64 * 1024;
/** Larger records get memory of their own (a chunk would hold too few of them). */
const LARGEST_IN_CHUNK = CHUNK_BYTES / 8;
/** Emptied chunks kept for reuse; more go back to the allocator. */
const SPARE_CHUNKS = 16;

interface Chunk {
  bytes: Buffer;
  /** Records in it not yet freed. */
  live: number;
}

export class ByteArena {
  // By the memory a record's view points into. Chunks are made rarely and kept: this map does not churn.
  private readonly chunks = new Map<ArrayBufferLike, Chunk>();
  private readonly spare: Chunk[] = [];
  private current: Chunk | undefined;
  private used = 0;

  /** `size` bytes, to be given back with free() once no longer read. */
  alloc(size: number): Buffer {
    if (size > LARGEST_IN_CHUNK) return Buffer.allocUnsafeSlow(size);
    if (!this.current || this.used + size > CHUNK_BYTES) {
      if (this.current && this.current.live === 0) this.release(this.current);
      this.current = this.spare.pop() ?? this.chunk();
      this.used = 0;
    }
    const chunk = this.current;
    chunk.live++;
    this.used += size;
    return chunk.bytes.subarray(this.used - size, this.used);
  }

  free(record: Buffer): void {
    const chunk = this.chunks.get(record.buffer);
    if (!chunk) return;
    chunk.live--;
    if (chunk.live === 0 && chunk !== this.current) this.release(chunk);
  }

  private chunk(): Chunk {
    const chunk = { bytes: Buffer.allocUnsafeSlow(CHUNK_BYTES), live: 0 };
    this.chunks.set(chunk.bytes.buffer, chunk);
    return chunk;
  }

  private release(chunk: Chunk): void {
    if (this.spare.length < SPARE_CHUNKS) this.spare.push(chunk);
    else this.chunks.delete(chunk.bytes.buffer);
  }
}
