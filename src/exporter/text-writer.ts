/**
 * A growable UTF-8 buffer for the /metrics body. Lines are encoded as they are rendered, a few dozen at a time,
 * so a scrape keeps no per-series strings alive: with 100k users the body has 800k lines, and as strings they
 * survived young collections (copied, then promoted) while the body grew, which made a scrape cost more per user
 * the more users there were.
 */
export class TextWriter {
  private buf: Buffer;
  private length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, initialBytes));
  }

  write(text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8, so this much room always takes the whole string.
    const room = text.length * 3;
    if (this.length + room > this.buf.length) this.grow(this.length + room);
    this.length += this.buf.write(text, this.length);
  }

  /** Appends bytes as they are. */
  writeBytes(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buf.length) this.grow(this.length + bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** The bytes written so far (a view: no copy). */
  finish(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  private grow(min: number): void {
    const next = Buffer.allocUnsafe(Math.max(min, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
}
