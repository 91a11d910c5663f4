// Merges several shards' COPY … TO STDOUT streams into one: one header line, one binary header and trailer.
//
// Postgres sends one CopyData per row; the HEADER line is a CopyData of its own, first. In binary
// format the file header rides in front of the first tuple's CopyData (or in front of the
// trailer when there are no rows) and the trailer (Int16 -1) is a CopyData of its own. The
// merged stream keeps the first header it sees, strips every later shard's, drops every trailer
// and sends one trailer at the end. Rows pass through untouched in whatever order they arrive.

const SIGNATURE_LEN = 11;
const HEADER_FIXED = SIGNATURE_LEN + 8;

export class CopyOutMerger {
  private readonly seen = new Set<number>();
  private headerSent = false;

  constructor(private readonly binary: boolean, private readonly headerLine: boolean) {}

  /** What to send the client for one CopyData body from `shardId`: the body, a part of it, or null. */
  data(shardId: number, body: Buffer): Buffer | null {
    const first = !this.seen.has(shardId);
    if (first) this.seen.add(shardId);
    if (!this.binary) {
      if (!first || !this.headerLine) return body;
      if (this.headerSent) return null;
      this.headerSent = true;
      return body;
    }
    let out = body;
    if (first && body.length >= HEADER_FIXED) {
      const headerLen = HEADER_FIXED + Math.max(0, body.readInt32BE(SIGNATURE_LEN + 4));
      if (this.headerSent) out = body.subarray(headerLen);
      else {
        this.headerSent = true;
        // Keep the header; drop a trailer that rode along (a shard without rows).
        if (isTrailerAt(body, headerLen)) return body.subarray(0, headerLen);
        return body;
      }
    }
    if (isTrailerAt(out, 0)) return null;
    return out.length === 0 ? null : out;
  }

  /** The body of the final CopyData (the binary trailer), or null. */
  end(): Buffer | null {
    return this.binary && this.headerSent ? Buffer.from([0xff, 0xff]) : null;
  }
}

function isTrailerAt(b: Buffer, at: number): boolean {
  return b.length === at + 2 && b[at] === 0xff && b[at + 1] === 0xff;
}
