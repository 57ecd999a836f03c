/**
 * On-disk framing of the journal ledger: append-only segment files of checksummed entries, and atomically
 * written snapshots. Kept apart from the ledger's state so the byte layout is in one place.
 *
 * Entry: u32 LE payload length, u32 LE crc32 (of the length bytes and the payload), payload (journal-entry.ts).
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { LedgerError } from './errors.js';
import { decodeSegmentHeader } from './journal-entry.js';

export const ENTRY_HEADER_BYTES = 8;
/** A payload larger than this is not something this ledger wrote (a group is at most a few MB). */
export const MAX_ENTRY_BYTES = 512 * 1024 * 1024;

const SEGMENT_RE = /^journal-(\d{12})\.log$/;
const SNAPSHOT_RE = /^snapshot-(\d{12})\.snap$/;

export const segmentName = (seq: number) => `journal-${String(seq).padStart(12, '0')}.log`;
export const snapshotName = (seq: number) => `snapshot-${String(seq).padStart(12, '0')}.snap`;

export function parseSegmentName(name: string): number | undefined {
  const m = SEGMENT_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function parseSnapshotName(name: string): number | undefined {
  const m = SNAPSHOT_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** One framed entry for a payload given as parts: header + parts, as one buffer. */
export function frameEntry(payload: Buffer[]): Buffer {
  let len = 0;
  for (const p of payload) len += p.length;
  const buf = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + len);
  buf.writeUInt32LE(len, 0);
  let off = ENTRY_HEADER_BYTES;
  for (const p of payload) off += p.copy(buf, off);
  buf.writeUInt32LE(crc32(buf.subarray(ENTRY_HEADER_BYTES), crc32(buf.subarray(0, 4))), 4);
  return buf;
}

export interface ReadEntries {
  /** Byte offset after the last valid entry. */
  validBytes: number;
  /** True when bytes after `validBytes` are an incomplete or torn last write (never acknowledged). */
  tornTail: boolean;
}

function allZero(buf: Buffer, from: number): boolean {
  for (let k = from; k < buf.length; k++) if (buf[k] !== 0) return false;
  return true;
}

/**
 * Calls `onEntry` for each valid entry of a segment's bytes. In the last segment, an entry that is cut short or
 * fails its checksum with nothing valid after it (the end of the file, or only zero bytes) is a torn tail: the
 * write was in progress at a crash, so it was never acknowledged. Anywhere else a bad entry is corruption: a
 * LedgerError naming the file and offset (never skipped, that would silently drop acknowledged calls).
 */
export function readEntries(buf: Buffer, file: string, isLast: boolean, onEntry: (payload: Buffer, offset: number) => void): ReadEntries {
  let off = 0;
  while (off < buf.length) {
    const torn = (why: string): ReadEntries => {
      if (isLast) return { validBytes: off, tornTail: true };
      throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${off}: ${why}; restore the directory from a backup`);
    };
    if (buf.length - off < ENTRY_HEADER_BYTES) return torn('the file ends inside an entry header');
    const len = buf.readUInt32LE(off);
    const end = off + ENTRY_HEADER_BYTES + len;
    if (len > MAX_ENTRY_BYTES || end > buf.length) {
      if (isLast && (end > buf.length || allZero(buf, off))) return torn('the file ends inside an entry');
      throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${off}: an entry length of ${len} bytes; restore the directory from a backup`);
    }
    const sum = crc32(buf.subarray(off + ENTRY_HEADER_BYTES, end), crc32(buf.subarray(off, off + 4)));
    if (sum !== buf.readUInt32LE(off + 4)) {
      if (isLast && (end === buf.length || allZero(buf, end))) return torn('checksum mismatch in the last entry');
      throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${off}: checksum mismatch; restore the directory from a backup`);
    }
    onEntry(buf.subarray(off + ENTRY_HEADER_BYTES, end), off);
    off = end;
  }
  return { validBytes: off, tornTail: false };
}

/** fsyncDirectory without blocking the event loop (a directory fsync can wait long behind a big file's writes). */
export async function fsyncDirectoryAsync(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A file a newer tokenmeter wrote: never skipped or repaired, the operator must upgrade. */
export class NewerFormatLedgerError extends LedgerError {}

/** The directory's format: `FORMAT` holds `FORMAT_TEXT(version)`. Format 2 reads every format-1 file. */
export const FORMAT_VERSION = 2;
export const FORMAT_FILE = 'FORMAT';
export const formatText = (version: number) => `tokenmeter journal ledger, format ${version}\n`;
const FORMAT_RE = /^tokenmeter journal ledger, format (\d+)\n$/;

/** Writes FORMAT naming `version`, atomically (temp file, fsync, rename, fsync of the directory). */
export function writeFormatFile(dir: string, version: number): void {
  const tmp = join(dir, `${FORMAT_FILE}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeAllSync(fd, Buffer.from(formatText(version), 'utf8'), 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, FORMAT_FILE));
  fsyncDirectory(dir);
}

/** Writes all of `buf` at `position`; a short write is retried and a write of 0 bytes is an error (disk full). */
export function writeAllSync(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = writeSync(fd, buf, done, buf.length - done, position + done);
    if (n <= 0) throw Object.assign(new Error(`short write: ${done} of ${buf.length} bytes written (disk full?)`), { code: 'ENOSPC' });
    done += n;
  }
}

/** The version a FORMAT file's text names, or undefined when it is not one. */
export function parseFormatText(text: string): number | undefined {
  const m = FORMAT_RE.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Format 1 snapshots: magic, u32 JSON length, JSON, binary dedup keys, u32 crc32 of everything before. */
const SNAPSHOT_MAGIC_V1 = Buffer.from('TOKENMETER-LEDGER-SNAPSHOT-1\n', 'latin1');
/** Later snapshots: `TOKENMETER-LEDGER-SNAPSHOT-<version>\n`, then framed chunks (as journal entries), the last an end chunk. */
const SNAPSHOT_MAGIC_PREFIX = Buffer.from('TOKENMETER-LEDGER-SNAPSHOT-', 'latin1');
export const SNAPSHOT_VERSION = 2;
const snapshotMagic = (version: number) => Buffer.from(`TOKENMETER-LEDGER-SNAPSHOT-${version}\n`, 'latin1');

/** The magic line that starts a snapshot file of the current version. */
export function snapshotHead(): Buffer {
  return snapshotMagic(SNAPSHOT_VERSION);
}

export type DecodedSnapshotFile =
  | { version: 1; json: string; binary: Buffer }
  | { version: number; chunks: Buffer[] };

/**
 * A snapshot file's content, or a LedgerError naming the file: format 1 (JSON + dedup keys) or the chunks of a
 * later version (checksummed each; the last must be the end chunk `isEnd` recognises, so a file cut short is
 * never taken for a whole one).
 */
export function decodeSnapshotFile(buf: Buffer, file: string, isEnd: (chunk: Buffer, count: number) => boolean): DecodedSnapshotFile {
  const bad = (why: string) => new LedgerError(`the journal ledger snapshot ${file} is corrupt (${why})`);
  if (buf.length >= SNAPSHOT_MAGIC_V1.length && buf.subarray(0, SNAPSHOT_MAGIC_V1.length).equals(SNAPSHOT_MAGIC_V1)) {
    if (buf.length < SNAPSHOT_MAGIC_V1.length + 8) throw bad('cut short');
    if (crc32(buf.subarray(0, buf.length - 4)) !== buf.readUInt32LE(buf.length - 4)) throw bad('checksum mismatch');
    const jsonLen = buf.readUInt32LE(SNAPSHOT_MAGIC_V1.length);
    const jsonStart = SNAPSHOT_MAGIC_V1.length + 4;
    if (jsonStart + jsonLen > buf.length - 4) throw bad('bad length');
    return { version: 1, json: buf.toString('utf8', jsonStart, jsonStart + jsonLen), binary: buf.subarray(jsonStart + jsonLen, buf.length - 4) };
  }
  if (!buf.subarray(0, SNAPSHOT_MAGIC_PREFIX.length).equals(SNAPSHOT_MAGIC_PREFIX)) throw bad('not a snapshot file');
  const nl = buf.indexOf(0x0a, SNAPSHOT_MAGIC_PREFIX.length);
  const version = Number(buf.toString('latin1', SNAPSHOT_MAGIC_PREFIX.length, nl < 0 ? SNAPSHOT_MAGIC_PREFIX.length : nl));
  if (nl < 0 || !Number.isSafeInteger(version) || version < 2) throw bad('not a snapshot file');
  if (version > SNAPSHOT_VERSION) {
    throw new NewerFormatLedgerError(`the journal ledger snapshot ${file} has format ${version}, written by a newer tokenmeter (this one reads up to ${SNAPSHOT_VERSION}); upgrade tokenmeter`);
  }
  const chunks: Buffer[] = [];
  const body = buf.subarray(nl + 1);
  let read: ReadEntries;
  try {
    read = readEntries(body, file, true, (payload) => chunks.push(payload));
  } catch (err) {
    throw bad((err as Error).message.replace(/^.*?is corrupt at /, 'at ').replace(/; restore.*$/, ''));
  }
  if (read.tornTail) throw bad(`cut short: it ends inside a chunk at byte ${nl + 1 + read.validBytes} of ${buf.length}`);
  const last = chunks.pop();
  if (last === undefined || !isEnd(last, chunks.length)) throw bad('cut short: no end chunk');
  return { version, chunks };
}

/** What writeSnapshotFile needs of a file handle (node:fs/promises' FileHandle has it; tests use a fake). */
export interface SnapshotFileHandle {
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file system writeSnapshotFile uses: node:fs/promises, or a hand-written fake in tests. */
export interface SnapshotFileSystem {
  open(path: string, flags: 'w' | 'r'): Promise<SnapshotFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export const nodeSnapshotFileSystem: SnapshotFileSystem = {
  open: (path, flags) => open(path, flags),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
};

const VERIFY_READ_BYTES = 4 * 1024 * 1024;

/**
 * Writes a snapshot to `dir/name` so that the name only ever holds a whole, verified file: the parts go to a temp
 * file (every write's length checked: a short write is continued, a write of nothing is "disk full"), fsync, the
 * file is read back and its length and checksum compared with what was written, then rename and an fsync of the
 * directory. On any failure the temp file is removed (it may be large, and the disk may be full) and the error
 * thrown; the previous snapshot is untouched. `parts` may be produced lazily, and `pause` is awaited between
 * parts and reads (the caller yields to its event loop there). `syncEveryBytes`: also fsync after every that many
 * bytes written (the final fsync and the read-back stay what makes the file count).
 */
export async function writeSnapshotFile(
  dir: string,
  name: string,
  parts: Iterable<Buffer>,
  fs: SnapshotFileSystem = nodeSnapshotFileSystem,
  pause: () => Promise<void> = async () => {},
  syncEveryBytes = Infinity,
): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  let fh: SnapshotFileHandle | undefined;
  try {
    fh = await fs.open(tmp, 'w');
    let size = 0;
    let sum = 0;
    let unsynced = 0;
    for (const part of parts) {
      let done = 0;
      while (done < part.length) {
        const { bytesWritten } = await fh.write(part, done, part.length - done, size + done);
        if (!(bytesWritten > 0)) throw Object.assign(new Error(`short write to ${tmp}: nothing written at byte ${size + done} (disk full?)`), { code: 'ENOSPC' });
        done += bytesWritten;
      }
      size += part.length;
      sum = crc32(part, sum);
      unsynced += part.length;
      // Flushed in small steps: a journal fdatasync on the same file system may have to wait for the snapshot's
      // dirty pages (ext4 commits them in the same journal transaction), so never let many pile up.
      if (unsynced >= syncEveryBytes) {
        unsynced = 0;
        await fh.sync();
      }
      await pause();
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    // Read back what the disk holds: a file system that lost or cut part of it must not replace a good snapshot.
    fh = await fs.open(tmp, 'r');
    const buf = Buffer.allocUnsafe(VERIFY_READ_BYTES);
    let readSum = 0;
    let at = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead <= 0) break;
      readSum = crc32(buf.subarray(0, bytesRead), readSum);
      at += bytesRead;
      await pause();
    }
    await fh.close();
    fh = undefined;
    if (at !== size || readSum !== sum) throw new Error(`${tmp} reads back ${at} bytes with checksum ${readSum}, ${size} bytes with checksum ${sum} were written`);
    await fs.rename(tmp, join(dir, name));
  } catch (err) {
    if (fh !== undefined) await fh.close().catch(() => {});
    await fs.unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDirectoryAsync(dir);
}

/**
 * True when `payload` is a segment header (format 2: the first entry of a segment) this code reads; a LedgerError
 * when it names a newer format or is not the first entry. A segment without one is format 1.
 */
export function checkSegmentHeader(payload: Buffer, file: string, offset: number): boolean {
  const header = decodeSegmentHeader(payload);
  if (header === undefined) return false;
  if (offset !== 0) throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: a segment header after the start; restore the directory from a backup`);
  if (header.formatVersion > FORMAT_VERSION) {
    throw new LedgerError(`the journal ledger file ${file} has format ${header.formatVersion}, written by a newer tokenmeter (this one reads up to ${FORMAT_VERSION}); upgrade tokenmeter`);
  }
  return true;
}
