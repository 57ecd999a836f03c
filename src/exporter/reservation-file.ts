import { closeSync, fdatasync, fsyncSync, openSync, readFileSync, renameSync, write, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import type { NewReservation } from './reservations.js';

/*
 * The embedded ledger's active holds, on disk (issue 16): `reservations.log` in the ledger directory, so a hold
 * granted before an exporter restart (a crash, a kill -9, a deploy) still counts after it, and calls in flight
 * across the restart cannot overshoot a limit. Not a journal entry: a hold is no usage and no total (the journal
 * and its format stay as they are; older tokenmeter versions ignore this file, and lose the holds as they did).
 *
 * - A grant is appended and fdatasync'd before the reservation is answered. Grants arriving while a write + sync
 *   is in flight go out together in the next one (one sync per group, as the journal's commits).
 * - A hold's end (settled by its committed call, or expired) is appended without a sync: lost in a crash, the hold
 *   is loaded again and counts until its TTL (never an overshoot, at worst a call refused a little early).
 * - At open the file is read, holds past their expiry are counted as expired (once: the file is then rewritten
 *   with only the live holds), and the rest are handed back to the store.
 * - Line: `<crc32 of the JSON, 8 hex> <JSON>\n`. A line cut short or failing its checksum is a write in progress at
 *   the crash (never answered) at the end, and a damaged file elsewhere: its line is skipped, and said.
 */

export const RESERVATIONS_FILE = 'reservations.log';
const HEADER = 'tokenmeter reservations, format 1';
/** Past this many ended-hold lines, the file is rewritten with the live holds only. */
const COMPACT_AFTER_LINES = 100_000;

interface GrantLine {
  g: string;
  u: string;
  p: string;
  s: number;
  t: number;
  r: number;
  c: string;
  e: number;
  ti?: string;
  si?: string;
}

function line(json: string): string {
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function grantLine(h: NewReservation): string {
  const g: GrantLine = {
    g: h.id,
    u: h.userId,
    p: h.plan,
    s: h.periodStart.getTime(),
    t: h.hold.tokens,
    r: h.hold.requests,
    c: h.hold.costUsd,
    e: h.expiresAt.getTime(),
  };
  if (h.traceId !== undefined && h.spanId !== undefined) {
    g.ti = h.traceId;
    g.si = h.spanId;
  }
  return line(JSON.stringify(g));
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

function toReservation(v: Record<string, unknown>): NewReservation | undefined {
  if (!isText(v.g, 64) || !isText(v.u, 256) || !isText(v.p, 64) || !isCount(v.s) || !isCount(v.t) || !isCount(v.r) || !isCount(v.e)) return undefined;
  if (typeof v.c !== 'string' || !/^\d{1,30}(\.\d{1,40})?$/.test(v.c)) return undefined;
  const r: NewReservation = {
    id: v.g,
    userId: v.u,
    plan: v.p,
    periodStart: new Date(v.s),
    hold: { tokens: v.t, requests: v.r, costUsd: v.c },
    expiresAt: new Date(v.e),
  };
  if (typeof v.ti === 'string' && /^[0-9a-f]{32}$/.test(v.ti) && typeof v.si === 'string' && /^[0-9a-f]{16}$/.test(v.si)) {
    r.traceId = v.ti;
    r.spanId = v.si;
  }
  return r;
}

export interface LoadedHolds {
  /** Holds still active at `now`. */
  live: NewReservation[];
  /** Holds whose expiry passed while the exporter was down (counted as expired once). */
  expired: number;
  /** Lines skipped (damaged), for the log. */
  skipped: number;
}

/** Reads the file's holds (none when there is no file). Never throws on content: a damaged line is skipped. */
export function readHolds(path: string, now: Date): LoadedHolds {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { live: [], expired: 0, skipped: 0 };
    throw err;
  }
  const holds = new Map<string, NewReservation>();
  let skipped = 0;
  const lines = text.split('\n');
  // The last element is what follows the final newline: empty, or a line cut short by a crash (never answered).
  if (lines[lines.length - 1] !== '') skipped++;
  lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (i === 0 && l === HEADER) continue;
    const sp = l.indexOf(' ');
    const json = l.slice(sp + 1);
    if (sp !== 8 || parseInt(l.slice(0, 8), 16) !== crc32(json) || !/^[0-9a-f]{8}$/.test(l.slice(0, 8))) {
      skipped++;
      continue;
    }
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      skipped++;
      continue;
    }
    if (v === null || typeof v !== 'object') {
      skipped++;
      continue;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.x === 'string') holds.delete(o.x);
    else {
      const r = toReservation(o);
      if (r === undefined) skipped++;
      else holds.set(r.id, r);
    }
  }
  const t = now.getTime();
  const live: NewReservation[] = [];
  let expired = 0;
  for (const h of holds.values()) {
    if (h.expiresAt.getTime() <= t) expired++;
    else live.push(h);
  }
  return { live, expired, skipped };
}

/** The append-only file of holds, owned by one process (the embedded ledger's directory lock). */
export class HoldFile {
  private fd: number;
  private pending: string[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private writing = false;
  private endedLines = 0;
  private closed = false;
  /** A write failed part-way: the next one starts on a new line, so the cut line costs no other. */
  private torn = false;

  private constructor(
    private readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /**
   * Opens (creating) the file in `dir`, reads its holds, and rewrites it with the live ones only (temp file, fsync,
   * rename, directory fsync), so a hold that expired while the exporter was down is counted once.
   */
  static open(dir: string, now: Date): { file: HoldFile; loaded: LoadedHolds } {
    const path = join(dir, RESERVATIONS_FILE);
    const loaded = readHolds(path, now);
    const file = new HoldFile(path, HoldFile.rewrite(dir, path, loaded.live));
    return { file, loaded };
  }

  private static rewrite(dir: string, path: string, live: readonly NewReservation[]): number {
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, `${HEADER}\n${live.map(grantLine).join('')}`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } catch {
      // Some file systems cannot sync a directory; the rename is then as durable as they make it.
    } finally {
      closeSync(dfd);
    }
    return openSync(path, 'a');
  }

  /** Appends a grant; resolves once it is on disk (fdatasync), rejects when it could not be written. */
  grant(h: NewReservation): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the reservations file is closed'));
    this.pending.push(grantLine(h));
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.writing) this.flush(true);
    return p;
  }

  /** Records that holds ended (settled or expired), without waiting for the disk. */
  ended(ids: readonly string[]): void {
    if (this.closed || ids.length === 0) return;
    for (const id of ids) this.pending.push(line(JSON.stringify({ x: id })));
    this.endedLines += ids.length;
    if (!this.writing) this.flush(false);
  }

  /** True when enough ended holds piled up that a rewrite with the live ones is worth it. */
  needsCompaction(): boolean {
    return this.endedLines >= COMPACT_AFTER_LINES && !this.writing && this.pending.length === 0;
  }

  /** Rewrites the file with `live` (synchronously: only between writes, when it has grown large). */
  compact(dir: string, live: readonly NewReservation[]): void {
    if (this.closed || this.writing || this.pending.length > 0) return;
    closeSync(this.fd);
    this.fd = HoldFile.rewrite(dir, this.path, live);
    this.endedLines = 0;
  }

  private flush(sync: boolean): void {
    const lines = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    this.writing = true;
    const buf = Buffer.from((this.torn ? '\n' : '') + lines.join(''), 'utf8');
    this.torn = false;
    const done = (err: Error | null): void => {
      this.writing = false;
      if (err) this.torn = true;
      for (const w of waiters) {
        if (err) w.reject(err);
        else w.resolve();
      }
      if (this.pending.length > 0 && !this.closed) this.flush(this.waiters.length > 0);
    };
    const writeFrom = (off: number): void => {
      write(this.fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) return done(err);
        if (off + n < buf.length) {
          if (n === 0) return done(new Error(`could not write ${this.path}: no space left`));
          return writeFrom(off + n);
        }
        if (!sync && waiters.length === 0) return done(null);
        fdatasync(this.fd, (e) => done(e));
      });
    };
    writeFrom(0);
  }

  /** Waits for writes in flight, syncs, closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.writing || this.pending.length > 0) {
      if (!this.writing) this.flush(true);
      await new Promise((r) => setTimeout(r, 1));
    }
    this.closed = true;
    try {
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }
}

/**
 * The holds file of an embedded ledger directory, with its holds; undefined (holds in memory only, said in the log)
 * when it cannot be opened. Called once the journal ledger holds the directory's lock (one writer).
 */
export function openHoldFile(storage: string, now: Date, log: (line: string) => void): { file: HoldFile; dir: string; loaded: LoadedHolds } | undefined {
  const dir = resolve(storage);
  try {
    const { file, loaded } = HoldFile.open(dir, now);
    if (loaded.skipped > 0) log(`reservations: ${loaded.skipped} damaged line(s) of ${join(dir, RESERVATIONS_FILE)} skipped (a write cut short by a crash is one)`);
    if (loaded.live.length > 0 || loaded.expired > 0) log(`reservations: ${loaded.live.length} hold(s) still active after the restart, ${loaded.expired} expired meanwhile`);
    return { file, dir, loaded };
  } catch (err) {
    log(
      `reservations: cannot use ${join(dir, RESERVATIONS_FILE)} (${err instanceof Error ? err.message : String(err)}): ` +
        'holds are kept in memory only, and a restart forgets them',
    );
    return undefined;
  }
}
