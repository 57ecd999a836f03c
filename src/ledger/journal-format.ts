/**
 * On-disk framing of the journal ledger: append-only segment files of checksummed entries, and atomically
 * written snapshots. Kept apart from the ledger's state so the byte layout is in one place.
 *
 * Entry: u32 LE payload length, u32 LE crc32 (of the length bytes and the payload), payload (journal-entry.ts).
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { LedgerError } from './errors.js';

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

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const SNAPSHOT_MAGIC = Buffer.from('TOKENMETER-LEDGER-SNAPSHOT-1\n', 'latin1');

/** Snapshot file bytes: magic, u32 JSON length, JSON, binary part, u32 crc32 of everything before. */
export function encodeSnapshot(json: string, binary: Buffer[]): Buffer[] {
  const head = Buffer.allocUnsafe(SNAPSHOT_MAGIC.length + 4);
  SNAPSHOT_MAGIC.copy(head, 0);
  const jsonBuf = Buffer.from(json, 'utf8');
  head.writeUInt32LE(jsonBuf.length, SNAPSHOT_MAGIC.length);
  const parts = [head, jsonBuf, ...binary];
  let sum = 0;
  for (const p of parts) sum = crc32(p, sum);
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt32LE(sum, 0);
  parts.push(tail);
  return parts;
}

/** The JSON and binary part of a snapshot file, or a LedgerError naming the file. */
export function decodeSnapshot(buf: Buffer, file: string): { json: string; binary: Buffer } {
  const bad = (why: string) => new LedgerError(`the journal ledger snapshot ${file} is corrupt (${why}); restore the directory from a backup`);
  if (buf.length < SNAPSHOT_MAGIC.length + 8 || !buf.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) throw bad('not a snapshot file');
  if (crc32(buf.subarray(0, buf.length - 4)) !== buf.readUInt32LE(buf.length - 4)) throw bad('checksum mismatch');
  const jsonLen = buf.readUInt32LE(SNAPSHOT_MAGIC.length);
  const jsonStart = SNAPSHOT_MAGIC.length + 4;
  if (jsonStart + jsonLen > buf.length - 4) throw bad('bad length');
  return { json: buf.toString('utf8', jsonStart, jsonStart + jsonLen), binary: buf.subarray(jsonStart + jsonLen, buf.length - 4) };
}

/**
 * Writes `parts` to `dir/name` atomically: a temp file, fsync, rename, fsync of the directory. Asynchronous, so
 * commits go on (into the next segment) while a snapshot is written.
 */
export async function writeFileAtomically(dir: string, name: string, parts: Buffer[]): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writev(parts);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
