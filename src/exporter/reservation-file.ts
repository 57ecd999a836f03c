import { closeSync, fdatasync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import type { NewReservation } from './reservations.js';

/*
 * The embedded ledger's active holds, on disk (issue 16): `reservations.log` in the ledger directory, so a hold
 * granted before an exporter restart (a crash, a kill -9, a deploy) still counts after it, and calls in flight
 * across the restart cannot overshoot a limit. Not a journal entry: a hold is no usage and no total (the journal
 * and its format stay as they are; older tokenmeter versions ignore this file, and lose the holds as they did).
 *
 * - A grant is appended before the reservation is answered: written (in the kernel, so it survives the exporter
 *   dying, kill -9 included) and fdatasync'd right after in the background; with `reservations.sync_each_grant`,
 *   fdatasync'd before the answer (survives a machine crash too, one disk sync on every answer). Grants arriving
 *   while a write is in flight go out together in the next one.
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

/**
 * Past this size the file is not ours as written (compaction keeps it to tens of MiB): refused rather than read into
 * memory whole.
 */
export const MAX_HOLDS_FILE_BYTES = 256 * 1024 * 1024;

/** Reads the file's holds (none when there is no file). Never throws on content: a damaged line is skipped. */
export function readHolds(path: string, now: Date, maxBytes = MAX_HOLDS_FILE_BYTES): LoadedHolds {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > maxBytes) throw new Error(`${path} is ${size} bytes, more than the ${maxBytes} a holds file can be`);
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

export interface HoldFileOptions {
  /**
   * true: a grant is answered once it is fdatasync'd (survives a machine crash; one disk sync per group of grants
   * on every answer). false (default): once it is written (in the kernel: survives the process dying, kill -9
   * included); the sync follows at once in the background, grouped, off the answer's path.
   */
  syncEachGrant?: boolean;
}

type Waiter = { resolve: () => void; reject: (e: Error) => void };

/**
 * The append-only file of holds, owned by one process (the embedded ledger's directory lock). Lines are gathered for
 * one turn of the event loop and written with one synchronous write (a few hundred bytes into the page cache: a few
 * µs, far less than a round trip through libuv's thread pool, which is what a reservation's answer would wait for).
 * fdatasync runs in the thread pool, one at a time, grouping what was written meanwhile.
 */
export class HoldFile {
  private fd: number;
  private pending: string[] = [];
  private pendingWaiters: Waiter[] = [];
  private scheduled = false;
  /** Written, waiting for the next sync to answer (syncEachGrant). */
  private awaitingSync: Waiter[] = [];
  private syncing = false;
  /** Written since the sync in flight began: another sync follows it. */
  private dirty = false;
  private endedLines = 0;
  private closed = false;
  /** A write failed part-way: the next one starts on a new line, so the cut line costs no other. */
  private torn = false;

  private constructor(
    private readonly path: string,
    fd: number,
    private readonly syncEachGrant: boolean,
  ) {
    this.fd = fd;
  }

  /**
   * Opens (creating) the file in `dir`, reads its holds, and rewrites it with the live ones only (temp file, fsync,
   * rename, directory fsync), so a hold that expired while the exporter was down is counted once.
   */
  static open(dir: string, now: Date, options: HoldFileOptions = {}): { file: HoldFile; loaded: LoadedHolds } {
    const path = join(dir, RESERVATIONS_FILE);
    const loaded = readHolds(path, now);
    const file = new HoldFile(path, HoldFile.rewrite(dir, path, loaded.live), options.syncEachGrant === true);
    return { file, loaded };
  }

  private static rewrite(dir: string, path: string, live: readonly NewReservation[]): number {
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, Buffer.from(`${HEADER}\n${live.map(grantLine).join('')}`, 'utf8'));
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

  /** Appends a grant; resolves once it is written (synced, with syncEachGrant), rejects when it could not be. */
  grant(h: NewReservation): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the reservations file is closed'));
    this.pending.push(grantLine(h));
    const p = new Promise<void>((resolve, reject) => this.pendingWaiters.push({ resolve, reject }));
    this.schedule();
    return p;
  }

  /** Records that holds ended (settled or expired), without waiting for the disk. */
  ended(ids: readonly string[]): void {
    if (this.closed || ids.length === 0) return;
    for (const id of ids) this.pending.push(line(JSON.stringify({ x: id })));
    this.endedLines += ids.length;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private get idle(): boolean {
    return !this.scheduled && !this.syncing && this.pending.length === 0 && this.awaitingSync.length === 0;
  }

  /** True when enough ended holds piled up that a rewrite with the live ones is worth it. */
  needsCompaction(): boolean {
    return this.endedLines >= COMPACT_AFTER_LINES && this.idle;
  }

  /** Rewrites the file with `live` (synchronously: only when idle and grown large). */
  compact(dir: string, live: readonly NewReservation[]): void {
    if (this.closed || !this.idle) return;
    closeSync(this.fd);
    this.fd = HoldFile.rewrite(dir, this.path, live);
    this.endedLines = 0;
  }

  /** Writes everything gathered this turn at once; answers the grants (or hands them to the next sync). */
  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const waiters = this.pendingWaiters;
    const buf = Buffer.from((this.torn ? '\n' : '') + this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingWaiters = [];
    try {
      writeAll(this.fd, buf);
      this.torn = false;
    } catch (err) {
      this.torn = true;
      const e = err instanceof Error ? err : new Error(String(err));
      for (const w of waiters) w.reject(e);
      return;
    }
    if (this.syncEachGrant) this.awaitingSync.push(...waiters);
    else for (const w of waiters) w.resolve();
    this.sync();
  }

  /** fdatasync, one at a time in the thread pool: what was written while one runs goes in the next. */
  private sync(): void {
    if (this.syncing) {
      this.dirty = true;
      return;
    }
    this.syncing = true;
    this.dirty = false;
    const batch = this.awaitingSync;
    this.awaitingSync = [];
    fdatasync(this.fd, (err) => {
      this.syncing = false;
      // Without syncEachGrant no one waits: a failed background sync changes nothing already answered, and a
      // broken disk shows at the next write.
      for (const w of batch) {
        if (err) w.reject(err);
        else w.resolve();
      }
      if ((this.dirty || this.awaitingSync.length > 0) && !this.closed) this.sync();
    });
  }

  /** Writes what is pending, waits for the sync in flight, syncs, closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    try {
      fsyncSync(this.fd);
      for (const w of this.awaitingSync.splice(0)) w.resolve();
    } finally {
      closeSync(this.fd);
    }
  }
}

/** A whole buffer, written synchronously (a short write is continued; a write of nothing is "disk full"). */
function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    const n = writeSync(fd, buf, off, buf.length - off);
    if (n === 0) throw new Error('no space left on the device');
    off += n;
  }
}

/**
 * The holds file of an embedded ledger directory, with its holds; undefined (holds in memory only, said in the log)
 * when it cannot be opened. Called once the journal ledger holds the directory's lock (one writer).
 */
export function openHoldFile(
  storage: string,
  now: Date,
  log: (line: string) => void,
  options: HoldFileOptions = {},
): { file: HoldFile; dir: string; loaded: LoadedHolds } | undefined {
  const dir = resolve(storage);
  try {
    const { file, loaded } = HoldFile.open(dir, now, options);
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
