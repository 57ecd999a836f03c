/**
 * The embedded ledger: an append-only journal of committed calls plus the period totals in memory.
 *
 * A commit appends one checksummed entry (every new call of the group) to the current segment file and
 * fdatasyncs it before it resolves; commits that arrive meanwhile queue and go out together in the next
 * write + sync. The state (dedup keys by received day, per-period totals: journal-state.ts) lives in memory and is
 * checkpointed to an atomically written snapshot (journal-snapshot.ts); opening loads the newest snapshot and
 * replays the segments after it. This file holds the files and the order of things: open and replay, the commit
 * queue, appends, snapshots, prune and close; the decisions are in journal-commit.ts, the reads in
 * journal-queries.ts, retention in journal-retention.ts. See README.md in this folder for the file layout and
 * the guarantees.
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  ftruncate,
  ftruncateSync,
  mkdirSync,
  open,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  write,
} from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { ExactDecimal } from '../pricing/index.js';
import { systemClock, type Clock } from '../plans/clock.js';
import { acquireDirectoryLock } from './dir-lock.js';
import { LedgerError, LedgerUnavailableError } from './errors.js';
import { commitResult, ID_WORDS, prepareCommit, type Prepared, type Waiter } from './journal-commit.js';
import { randomBytes } from 'node:crypto';
import { auditOf, newAuditId, validateRepriceRequest, type RepriceAudit, type RepriceRequest } from './adjustments.js';
import { CommitEncoder, decodeEntry, encodeAdjustment, encodePrune, encodeSegmentHeader, ENTRY_COMMIT, NewerFormatError } from './journal-entry.js';
import {
  checkSegmentHeader,
  FORMAT_FILE,
  FORMAT_VERSION,
  fsyncDirectoryAsync,
  NewerFormatLedgerError,
  frameEntry,
  parseFormatText,
  parseSegmentName,
  parseSnapshotName,
  readEntries,
  segmentName,
  snapshotName,
  nodeSnapshotFileSystem,
  writeSnapshotFile,
  type SnapshotFileSystem,
  writeFormatFile,
} from './journal-format.js';
import * as queries from './journal-queries.js';
import { deletePrunedSegments, pruneNeedsSnapshot } from './journal-retention.js';
import { beginSnapshot, loadSnapshot } from './journal-snapshot.js';
import { pgliteRetiredMessage } from './journal-inspect.js';
import { normaliseFilter, scanJournalSegments, type CallFilter, type LedgerCall } from './call-scan.js';
import { DAY_MILLIS, isoOf, JournalState, type PeriodState, type SegmentInfo } from './journal-state.js';
import {
  DEFAULT_DEDUP_WINDOW_MILLIS,
  pruneArguments,
  type CommitOptions,
  type DiscountFunction,
  type JournalLedgerOptions,
  type JournalTrace,
  type Ledger,
  type LedgerOptions,
  type LoadRollupsOptions,
  type ScanRollupsOptions,
  type ModelUsage,
  type PeriodSummary,
  type ProviderSpend,
  type PruneOptions,
  type PruneResult,
  type UserPeriodUsage,
} from './ledger-interface.js';
import { LimbSum } from '../money/index.js';
import { isPrevalidated, validateRecord } from './record-validation.js';
import type { CommitResult, LedgerRecord, PeriodRollup, TouchedRollups } from './types.js';

export type { JournalLedgerOptions, JournalTrace } from './ledger-interface.js';

const Exact = ExactDecimal;

/** Lets the event loop run (I/O callbacks, timers) before the snapshot writer or a commit group goes on. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The caller's list of changed rows in period `ps` (a commit's records almost always share one period). */
function touchedIn(touched: TouchedRollups[], ps: string): TouchedRollups {
  for (const t of touched) if (t.periodStart === ps) return t;
  const t: TouchedRollups = { periodStart: ps, rows: [] };
  touched.push(t);
  return t;
}

/** Longest synchronous run of a commit group's work before it lets the event loop run (see #commitGroup). */
const SLICE_MILLIS = 4;

/**
 * Defaults of JournalLedgerOptions.snapshotSyncEveryBytes and snapshotLoopShare: one fsync at the end, no pacing (the
 * writer as before). On the loaded machine of session 5, 1 MiB steps + a share of 0.25 had the lower p99 in 4 of 4
 * rounds at 30% of capacity and the far higher one (10-11 s, snapshots of 25-33 s) in 2 of 2 at 50%: not changed
 * until an idle run decides (BENCHMARKS.md 4b, `--compare`).
 */
const SNAPSHOT_SYNC_EVERY_BYTES = Infinity;
const SNAPSHOT_LOOP_SHARE = 1;

/** `parts` with the synchronous time each one took to produce reported to `onBusy` (milliseconds). */
function* timedParts(parts: Iterable<Buffer>, onBusy: (millis: number) => void): Generator<Buffer> {
  const it = parts[Symbol.iterator]();
  try {
    for (;;) {
      const t = performance.now();
      const r = it.next();
      onBusy(performance.now() - t);
      if (r.done === true) return;
      yield r.value;
    }
  } finally {
    it.return?.(); // a writer that stops early (a full disk) ends the inner generator too
  }
}

/** Writes all of `buf` at `position`; a short write is continued, a write of nothing is "disk full". */
async function writeAll(fd: number, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await promisify<number>((cb) => write(fd, buf, done, buf.length - done, position + done, cb));
    if (!(n > 0)) throw Object.assign(new Error(`short write: nothing written at byte ${position + done} (disk full?)`), { code: 'ENOSPC' });
    done += n;
  }
}

function promisify<T>(fn: (cb: (err: NodeJS.ErrnoException | null, v?: T) => void) => void): Promise<T> {
  return new Promise((res, rej) => fn((err, v) => (err ? rej(err) : res(v as T))));
}

/** `fs` with every snapshot write, sync and read reported to `report` (JournalTrace.snapshotIo). */
function tracedFileSystem(fs: SnapshotFileSystem, report: NonNullable<JournalTrace['snapshotIo']>): SnapshotFileSystem {
  return {
    rename: (from, to) => fs.rename(from, to),
    unlink: (path) => fs.unlink(path),
    open: async (path, flags) => {
      const fh = await fs.open(path, flags);
      return {
        write: async (buffer, offset, length, position) => {
          const t = performance.now();
          const r = await fh.write(buffer, offset, length, position);
          report('write', t, performance.now(), r.bytesWritten);
          return r;
        },
        read: async (buffer, offset, length, position) => {
          const t = performance.now();
          const r = await fh.read(buffer, offset, length, position);
          report('read', t, performance.now(), r.bytesRead);
          return r;
        },
        sync: async () => {
          const t = performance.now();
          await fh.sync();
          report('sync', t, performance.now(), 0);
        },
        close: () => fh.close(),
      };
    },
  };
}

export class JournalLedger implements Ledger {
  readonly kind = 'embedded' as const;
  readonly dedupWindowMillis: number;
  readonly dir: string;
  readonly #clock: Clock;
  readonly #discounts: DiscountFunction | undefined;
  readonly #segmentMaxBytes: number;
  readonly #snapshotEveryBytes: number;
  readonly #snapshotOnClose: boolean;
  readonly #snapshotSyncEveryBytes: number;
  readonly #snapshotLoopShare: number;
  /** True while a commit group runs (deciding, writing, syncing or applying). */
  #committing = false;
  /** True while an exclusive job runs (checkpoint, prune, close, re-pricing): commits wait for it, not for the loop. */
  #inJob = false;
  readonly #log: (message: string) => void;
  readonly #fs: SnapshotFileSystem;
  readonly #trace: JournalTrace | undefined;
  #snapshotFailed = false;
  #release: () => void = () => {};

  #state = new JournalState();
  /** Sealed and current segments, oldest first. */
  #segments: SegmentInfo[] = [];
  #current: SegmentInfo | undefined;
  #fd: number | undefined;
  #nextSeq = 1;
  /** The newest durable snapshot covers every segment below this sequence number. */
  #snapshotSeq = 0;
  #bytesSinceSnapshot = 0;
  #snapshotting: Promise<void> | undefined;

  #queue: Waiter[] = [];
  #jobs: (() => Promise<void>)[] = [];
  #running = false;
  #closed = false;
  /** Set when a failed write could not be undone: nothing more is written until the ledger is reopened. */
  #broken: string | undefined;

  private constructor(dir: string, options: LedgerOptions, journal: JournalLedgerOptions) {
    this.dir = dir;
    this.dedupWindowMillis = options.dedupWindowMillis ?? DEFAULT_DEDUP_WINDOW_MILLIS;
    this.#clock = options.clock ?? systemClock;
    this.#discounts = options.discounts;
    this.#segmentMaxBytes = journal.segmentMaxBytes ?? 64 * 1024 * 1024;
    this.#snapshotEveryBytes = journal.snapshotEveryBytes ?? 64 * 1024 * 1024;
    this.#snapshotOnClose = journal.snapshotOnClose ?? true;
    this.#snapshotSyncEveryBytes = journal.snapshotSyncEveryBytes ?? SNAPSHOT_SYNC_EVERY_BYTES;
    this.#snapshotLoopShare = journal.snapshotLoopShare ?? SNAPSHOT_LOOP_SHARE;
    this.#trace = journal.trace;
    const fs = journal.fileSystem ?? nodeSnapshotFileSystem;
    this.#fs = journal.trace?.snapshotIo ? tracedFileSystem(fs, journal.trace.snapshotIo.bind(journal.trace)) : fs;
    this.#log = journal.log ?? ((message) => process.stderr.write(`tokenmeter: ${message}\n`));
  }

  /** Opens (creating if missing) the journal ledger in `dir`: newest snapshot + replay of the later segments. */
  static async open(dir: string, options: LedgerOptions = {}, journal: JournalLedgerOptions = {}): Promise<JournalLedger> {
    const abs = resolve(dir);
    const share = journal.snapshotLoopShare;
    if (share !== undefined && !(share > 0 && share <= 1)) throw new LedgerError(`snapshotLoopShare must be a number in (0, 1], got ${String(share)}`);
    const step = journal.snapshotSyncEveryBytes;
    if (step !== undefined && !(step > 0)) throw new LedgerError(`snapshotSyncEveryBytes must be a positive number of bytes (Infinity: one fsync at the end), got ${String(step)}`);
    try {
      mkdirSync(abs, { recursive: true });
    } catch (err) {
      throw new LedgerError(`cannot create the embedded ledger directory ${abs}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (existsSync(join(abs, 'PG_VERSION'))) throw new LedgerError(pgliteRetiredMessage(abs));
    const release = acquireDirectoryLock(abs);
    const ledger = new JournalLedger(abs, options, journal);
    ledger.#release = release;
    try {
      ledger.#load();
    } catch (err) {
      ledger.#closeFd();
      release();
      throw err;
    }
    return ledger;
  }

  // ---- loading ----

  #load(): void {
    const upgradeFrom = this.#checkFormat();
    const names = readdirSync(this.dir);
    for (const n of names) if (n.endsWith('.tmp')) unlinkSync(join(this.dir, n)); // an interrupted snapshot
    const segSeqs = names.map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    const snapSeqs = names.map(parseSnapshotName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    const covered = this.#loadNewestGoodSnapshot(snapSeqs, segSeqs);
    const known = new Set(this.#segments.map((s) => s.seq));
    const toReplay = segSeqs.filter((s) => s >= covered);
    for (const seq of segSeqs) if (seq < covered && !known.has(seq)) this.#segments.push(this.#scanSegment(seq)); // kept for retention only
    this.#segments.sort((a, b) => a.seq - b.seq);
    toReplay.forEach((seq, k) => this.#segments.push(this.#replaySegment(seq, k === toReplay.length - 1)));
    this.#nextSeq = Math.max(covered, segSeqs.length > 0 ? segSeqs[segSeqs.length - 1] + 1 : 1, snapSeqs.length > 0 ? snapSeqs[snapSeqs.length - 1] : 1, 1);
    this.#state.dropDaysBefore(this.#clock.now().getTime() - this.dedupWindowMillis);
    this.#state.names.clear();
    if (upgradeFrom !== undefined) {
      // Only now (everything read): from here on this directory holds format-2 files, which older versions refuse.
      writeFormatFile(this.dir, FORMAT_VERSION);
      this.#log(
        `the embedded ledger in ${this.dir} was upgraded from format ${upgradeFrom} to format ${FORMAT_VERSION}: its format-${upgradeFrom} files stay ` +
          `readable, new files are format ${FORMAT_VERSION}; tokenmeter versions before the format change can no longer open it (keep a backup to go back)`,
      );
    }
  }

  /** Checks FORMAT (creating it in a new directory); returns the older version to upgrade from, if any. */
  #checkFormat(): number | undefined {
    const formatPath = join(this.dir, FORMAT_FILE);
    if (!existsSync(formatPath)) {
      writeFormatFile(this.dir, FORMAT_VERSION);
      return undefined;
    }
    const text = readFileSync(formatPath, 'utf8');
    const version = parseFormatText(text);
    if (version === undefined) throw new LedgerError(`${formatPath} says "${text.trim().slice(0, 200)}", not a journal ledger format; is ${this.dir} a tokenmeter ledger directory?`);
    if (version > FORMAT_VERSION) {
      throw new LedgerError(`${formatPath} says format ${version}, written by a newer tokenmeter (this one reads formats 1 to ${FORMAT_VERSION}); upgrade tokenmeter`);
    }
    return version < FORMAT_VERSION ? version : undefined;
  }

  /**
   * Loads the newest snapshot that reads back whole; a corrupt or cut-short one (a disk that filled up, a bad
   * sector) is skipped with a message, and the journal after the older snapshot (or all of it) is replayed
   * instead: the segments hold every acknowledged call. Returns the sequence number the loaded snapshot covers
   * (0 = none: replay everything). Refuses when the segments a fallback needs are gone (pruned).
   */
  #loadNewestGoodSnapshot(snapSeqs: number[], segSeqs: number[]): number {
    const have = new Set(segSeqs);
    const maxSeq = segSeqs.length > 0 ? segSeqs[segSeqs.length - 1] : 0;
    // Replaying after a snapshot covering `from` needs every segment from `from` on (prune deletes only older ones).
    const replayable = (from: number) => {
      for (let seq = Math.max(from, 1); seq <= maxSeq; seq++) if (!have.has(seq)) return false;
      return true;
    };
    const skipped: string[] = [];
    for (let k = snapSeqs.length - 1; k >= -1; k--) {
      const covers = k >= 0 ? snapSeqs[k] : 0;
      if (skipped.length > 0 && !replayable(covers)) continue;
      if (k < 0) {
        if (skipped.length > 0) this.#log(`${skipped.join('; ')}; no older snapshot is readable, so the whole journal is replayed instead (every call is in it)`);
        return 0;
      }
      const file = join(this.dir, snapshotName(covers));
      const state = new JournalState();
      try {
        const { segments } = loadSnapshot(state, file);
        this.#state = state;
        this.#segments = segments;
        this.#snapshotSeq = covers;
        if (skipped.length > 0) this.#log(`${skipped.join('; ')}; loaded the older snapshot ${file} and replayed the journal after it instead (every call is in it)`);
        return covers;
      } catch (err) {
        if (!(err instanceof LedgerError) || err instanceof NewerFormatLedgerError) throw err;
        skipped.push(`skipped the journal ledger snapshot ${file}: ${err.message}`);
      }
    }
    // Not reached: the loop returns at k = -1 unless the journal before the newest snapshot was pruned.
    throw new LedgerError(
      `${skipped.join('; ')}; no older snapshot is readable and the journal segments before it were pruned, so the totals cannot be rebuilt; restore the directory from a backup`,
    );
  }

  /** Metadata of a segment already covered by the snapshot but missing from its list (should not happen). */
  #scanSegment(seq: number): SegmentInfo {
    const info: SegmentInfo = { seq, records: 0, bytes: 0, maxReceivedMillis: 0, day: 0 };
    const file = join(this.dir, segmentName(seq));
    const buf = readFileSync(file);
    info.bytes = buf.length;
    readEntries(buf, file, false, (payload, offset) => {
      if (checkSegmentHeader(payload, file, offset)) return;
      if (payload.length >= 24 && payload[0] === ENTRY_COMMIT) {
        info.records += payload.readUInt32LE(16);
        info.maxReceivedMillis = Math.max(info.maxReceivedMillis, payload.readDoubleLE(8));
      }
    });
    return info;
  }

  #replaySegment(seq: number, isLast: boolean): SegmentInfo {
    const file = join(this.dir, segmentName(seq));
    const buf = readFileSync(file);
    const info: SegmentInfo = { seq, records: 0, bytes: 0, maxReceivedMillis: 0, day: 0 };
    const res = readEntries(buf, file, isLast, (payload, offset) => this.#replayEntry(payload, info, file, offset));
    if (res.tornTail) {
      // The unfinished last write of a crashed process: never acknowledged, so dropped.
      const fd = openSync(file, 'r+');
      try {
        ftruncateSync(fd, res.validBytes);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    info.bytes = res.validBytes;
    this.#bytesSinceSnapshot += res.validBytes;
    return info;
  }

  #replayEntry(payload: Buffer, info: SegmentInfo, file: string, offset: number): void {
    if (checkSegmentHeader(payload, file, offset)) return;
    let entry;
    try {
      entry = decodeEntry(payload, this.#state.intern);
    } catch (err) {
      if (err instanceof NewerFormatError) {
        throw new LedgerError(`the journal ledger file ${file} holds an entry at byte offset ${offset} that a newer tokenmeter wrote (${err.message}); upgrade tokenmeter`);
      }
      throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: ${(err as Error).message}; restore the directory from a backup`);
    }
    if (entry.kind === 'prune') {
      this.#state.dropRollupsBefore(entry.rollupsBeforeMillis);
      return;
    }
    if (entry.kind === 'adjust') {
      let adj;
      try {
        adj = entry.read();
      } catch (err) {
        throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: ${(err as Error).message}; restore the directory from a backup`);
      }
      this.#state.applyAdjustments(adj.audit, adj.calls, false);
      return;
    }
    const receivedAt = entry.receivedAtMillis;
    const day = Math.floor(receivedAt / DAY_MILLIS);
    const keep = (day + 1) * DAY_MILLIS > this.#clock.now().getTime() - this.dedupWindowMillis;
    const bucket = keep ? this.#state.bucket(day) : undefined;
    const gross = this.#state.scratch;
    entry.forEach((c) => {
      bucket?.addWords(c.words, c.idAt);
      gross.set(c.totalCostUsd);
      const discount = c.discount;
      this.#state.apply(
        c.periodStart, c.userId, c.plan, c.provider, c.model, c.t0, c.t1, c.t2, c.t3, c.t4, c.t5, c.priced, c.estimated,
        gross, discount === undefined ? undefined : LimbSum.of(discount), discount === undefined ? gross : LimbSum.of(new Exact(c.totalCostUsd).minus(discount).toFixed()),
      );
    });
    info.records += entry.calls;
    info.maxReceivedMillis = Math.max(info.maxReceivedMillis, receivedAt);
    info.day = day;
  }

  // ---- commit ----

  #unavailable(): LedgerUnavailableError | undefined {
    if (this.#closed) return new LedgerUnavailableError('ledger is closed');
    if (this.#broken !== undefined) return new LedgerUnavailableError(this.#broken);
    return undefined;
  }

  commit(records: LedgerRecord[], options: CommitOptions = {}): Promise<CommitResult> {
    const down = this.#unavailable();
    if (down) return Promise.reject(down);
    try {
      if (!Array.isArray(records)) throw new LedgerError('commit: records must be an array');
      if (!isPrevalidated(records)) for (let i = 0; i < records.length; i++) validateRecord(records[i], i);
    } catch (err) {
      return Promise.reject(err);
    }
    if (records.length === 0) return Promise.resolve({ committed: [], duplicates: [], rollups: [], outcomes: [] });
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, discounts: options.discounts ?? this.#discounts, live: options.liveTotals === true, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Commits several callers' records in one group (one journal entry, one fdatasync), each caller with its own
   * result, as if each had called `commit` in the same turn. Lets a GroupCommitter hand its batch over without
   * joining the callers' records and splitting the result again. Arrays not marked prevalidated are validated.
   * Undefined (nothing done) when volume discounts apply: they are decided in call order across the whole batch,
   * which needs the joined records. `onDurable[k]`, if set, is called synchronously as soon as caller k's records
   * are durable (after the journal write and fdatasync, once the group's records are in the totals, before its result is built);
   * never for a caller that is rejected.
   */
  commitEach(
    callers: readonly LedgerRecord[][],
    options: CommitOptions = {},
    onDurable?: readonly ((() => void) | undefined)[],
  ): Promise<CommitResult>[] | undefined {
    const discounts = options.discounts ?? this.#discounts;
    if (discounts !== undefined) return undefined;
    const live = options.liveTotals === true;
    const down = this.#unavailable();
    const out: Promise<CommitResult>[] = [];
    for (let k = 0; k < callers.length; k++) {
      const records = callers[k];
      if (down) {
        out.push(Promise.reject(down));
        continue;
      }
      try {
        if (!Array.isArray(records)) throw new LedgerError('commit: records must be an array');
        if (!isPrevalidated(records)) for (let i = 0; i < records.length; i++) validateRecord(records[i], i);
      } catch (err) {
        out.push(Promise.reject(err));
        continue;
      }
      if (records.length === 0) {
        out.push(Promise.resolve({ committed: [], duplicates: [], rollups: [], outcomes: [] }));
        continue;
      }
      const durable = onDurable?.[k];
      out.push(new Promise((resolve, reject) => this.#queue.push({ records, discounts, live, onDurable: durable, resolve, reject })));
    }
    // Queued first, kicked once: the callers go out in one group.
    this.#kick();
    return out;
  }

  #kick(): void {
    if (this.#running || (this.#queue.length === 0 && this.#jobs.length === 0)) return;
    this.#running = true;
    void this.#loop();
  }

  /** One group at a time: everything queued while the previous write + sync was in flight goes out together. */
  async #loop(): Promise<void> {
    try {
      while (this.#queue.length > 0 || this.#jobs.length > 0) {
        if (this.#queue.length > 0) {
          this.#committing = true;
          try {
            await this.#commitGroup(this.#queue.splice(0));
          } finally {
            this.#committing = false;
          }
        }
        const job = this.#jobs.shift();
        if (job) {
          this.#inJob = true;
          try {
            await job();
          } finally {
            this.#inJob = false;
          }
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Runs `fn` between commit groups (nothing else writes meanwhile). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((res, rej) => {
      this.#jobs.push(() => fn().then(res, rej));
      this.#kick();
    });
  }

  /**
   * One group: decide (dedup, discounts), encode, append + fdatasync, then apply each caller's records to the
   * totals, tell it its records are durable and resolve it. A group can hold many callers' thousands of records
   * (all that queued during the previous sync), so the synchronous work is done in slices: past SLICE_MILLIS the
   * event loop runs (requests, scrapes, the snapshot writer) before the next slice. Nothing else commits
   * meanwhile (one group at a time), and a caller is told its records are durable only once the whole group is
   * in the totals, so whoever it acknowledges reads them back; readers between slices may see part of the group
   * (durable calls whose callers are not told yet).
   */
  async #commitGroup(group: Waiter[]): Promise<void> {
    const down = this.#unavailable();
    if (down && this.#broken !== undefined) {
      for (const w of group) w.reject(down);
      return;
    }
    let sliceStart = performance.now();
    const timing = this.#trace?.group ? { start: sliceStart, appendStart: 0, written: 0, synced: 0 } : undefined;
    const pace = async () => {
      if (performance.now() - sliceStart < SLICE_MILLIS) return;
      await nextTurn();
      sliceStart = performance.now();
    };
    const now = this.#clock.now().getTime();
    this.#state.dropDaysBefore(now - this.dedupWindowMillis);
    // New keys go into today's bucket at once (later records of the group see them); undone if the write fails.
    const today = this.#state.bucket(Math.floor(now / DAY_MILLIS));
    const pendingSpend = new Map<string, LimbSum>();
    const prepared: Prepared[] = [];
    for (const w of group) {
      try {
        prepared.push(prepareCommit(this.#state, w, today, pendingSpend));
      } catch (err) {
        w.reject(err instanceof LedgerError ? err : new LedgerError(`ledger commit failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
      await pace();
    }
    let fresh = 0;
    for (const p of prepared) fresh += p.fresh.length;
    if (fresh > 0) {
      // Layout 2 (fee fields) only for an entry with a call that has per-call fees: the common entry stays 160 bytes a call.
      let withFees = false;
      for (const p of prepared) {
        for (const i of p.fresh) {
          const r = p.waiter.records[i];
          if (r.feeCostUsd !== undefined || r.toolCalls !== undefined) withFees = true;
        }
      }
      const enc = new CommitEncoder(fresh, withFees);
      for (const p of prepared) {
        const recs = p.waiter.records;
        p.fresh.forEach((i, k) => enc.add(recs[i], this.#state.iso(recs[i].periodStart), p.discounts[k]?.toFixed(), p.ids, i * ID_WORDS));
        await pace();
      }
      try {
        await this.#append(enc.finish(now), now, fresh, timing);
      } catch (err) {
        for (const p of prepared) {
          for (const i of p.fresh) today.delete(p.waiter.records[i].traceId, p.waiter.records[i].spanId);
          p.waiter.reject(err);
        }
        return;
      }
      sliceStart = performance.now();
    }
    // Every new record into the totals, then each caller told and resolved (its rollups are the totals after the
    // whole group, as if its records had been joined with the others'). Only duplicates: durable since their first commit.
    const gross = this.#state.scratch;
    let applied = 0;
    for (const p of prepared) {
      const recs = p.waiter.records;
      const fresh = p.fresh;
      // A live caller collects each row its records change, once (its stamp), in the period's list.
      const touched = p.touched;
      const stamp = touched === undefined ? 0 : this.#state.nextTouchStamp();
      let rows: TouchedRollups | undefined;
      for (let k = 0; k < fresh.length; k++) {
        const r = recs[fresh[k]];
        const u = r.usage;
        const discount = p.discounts[k];
        gross.set(r.totalCostUsd);
        const net = discount === undefined ? gross : LimbSum.of(new Exact(r.totalCostUsd).minus(discount).toFixed());
        const ps = this.#state.iso(r.periodStart);
        const row = this.#state.apply(
          ps, r.userId, r.plan, r.provider, r.model,
          u.input, u.cache_read, u.cache_write, u.output, u.reasoning, u.cache_write_1h ?? 0,
          r.priced, r.estimated, gross, discount === undefined ? undefined : LimbSum.of(discount.toFixed()), net,
        );
        if (touched !== undefined && row.touchStamp !== stamp) {
          row.touchStamp = stamp;
          if (rows === undefined || rows.periodStart !== ps) rows = touchedIn(touched, ps);
          rows.rows.push(row);
        }
        if ((++applied & 255) === 0) await pace();
      }
    }
    for (const p of prepared) {
      this.#durable(p);
      p.waiter.resolve(commitResult(this.#state, p));
      await pace();
    }
    if (timing) {
      if (timing.appendStart === 0) timing.appendStart = timing.written = timing.synced = timing.start;
      let records = 0;
      for (const w of group) records += w.records.length;
      this.#trace!.group!({ ...timing, end: performance.now(), callers: group.length, records, fresh });
    }
    if (this.#bytesSinceSnapshot >= this.#snapshotEveryBytes && !this.#snapshotting) this.#startSnapshot();
  }

  /**
   * Tells the caller its records are durable (the exporter acknowledges then, in this same turn: its records are
   * already in the totals). A throwing callback does not stop the group.
   */
  #durable(p: Prepared): void {
    const cb = p.waiter.onDurable;
    if (cb === undefined) return;
    try {
      cb();
    } catch {
      // The caller's own problem; its promise still resolves with the result.
    }
  }

  /** Appends one entry to the current segment and makes it durable; on failure nothing of it remains. */
  async #append(payload: Buffer[], receivedAtMillis: number, records: number, timing?: { appendStart: number; written: number; synced: number }): Promise<void> {
    if (timing) timing.appendStart = performance.now(); // the write phase includes opening a new segment
    const day = Math.floor(receivedAtMillis / DAY_MILLIS);
    let cur = this.#current;
    if (cur && (cur.bytes >= this.#segmentMaxBytes || (cur.records > 0 && cur.day !== day))) {
      this.#seal();
      cur = undefined;
    }
    if (!cur || this.#fd === undefined) cur = await this.#openSegment(day);
    const fd = this.#fd!;
    const buf = frameEntry(payload);
    const at = cur.bytes;
    try {
      await writeAll(fd, buf, at);
      if (timing) timing.written = performance.now();
      await promisify<void>((cb) => fdatasync(fd, cb));
      if (timing) timing.synced = performance.now();
    } catch (err) {
      // Cut the file back so a retried span is not in the journal twice (the caller was told it failed).
      try {
        await promisify<void>((cb) => ftruncate(fd, at, cb));
        await promisify<void>((cb) => fdatasync(fd, cb));
      } catch (undoErr) {
        this.#broken = `the embedded ledger cannot write ${join(this.dir, segmentName(cur.seq))} (${(undoErr as Error).message}); reopen it (restart the exporter)`;
      }
      throw new LedgerUnavailableError(`ledger unavailable (commit): cannot write the journal: ${(err as Error).message}`, { cause: err });
    }
    cur.bytes += buf.length;
    cur.records += records;
    if (records > 0) cur.maxReceivedMillis = Math.max(cur.maxReceivedMillis, receivedAtMillis);
    cur.day = day;
    this.#bytesSinceSnapshot += buf.length;
  }

  /** Creates the next segment with its header (asynchronously: a directory fsync can wait behind other writes). */
  async #openSegment(day: number): Promise<SegmentInfo> {
    const seq = this.#nextSeq++;
    const file = join(this.dir, segmentName(seq));
    const header = frameEntry(encodeSegmentHeader(FORMAT_VERSION, seq));
    let fd: number | undefined;
    try {
      fd = await promisify<number>((cb) => open(file, 'wx', cb));
      // Made durable by the first append's fdatasync, which comes before anything is acknowledged.
      await writeAll(fd, header, 0);
      await fsyncDirectoryAsync(this.dir); // the new file's name must survive a crash too
    } catch (err) {
      // Nothing of it may stay: a half-written header, or a gap in the sequence numbers.
      if (fd !== undefined) {
        try {
          closeSync(fd);
          unlinkSync(file);
        } catch {}
      }
      this.#nextSeq = seq;
      throw new LedgerUnavailableError(`ledger unavailable (commit): cannot create ${file}: ${(err as Error).message}`, { cause: err });
    }
    this.#fd = fd;
    const info: SegmentInfo = { seq, records: 0, bytes: header.length, maxReceivedMillis: 0, day };
    this.#current = info;
    this.#segments.push(info);
    return info;
  }

  #closeFd(): void {
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch {}
    }
    this.#fd = undefined;
  }

  /** Ends the current segment (every entry in it is already synced); the next write starts a new one. */
  #seal(): void {
    this.#closeFd();
    this.#current = undefined;
  }

  // ---- snapshots ----

  /** Seals the current segment and writes a snapshot of the state, which covers every segment so far. */
  #startSnapshot(): Promise<void> {
    this.#seal();
    const covers = this.#nextSeq;
    // Off the event loop's critical path: the state is taken as it is now (copy-on-write), then serialised and
    // written a chunk at a time, yielding to the event loop between chunks while commits and queries go on.
    const started = performance.now();
    const snap = beginSnapshot(this.#state, this.#segments, covers);
    this.#bytesSinceSnapshot = 0;
    const name = snapshotName(covers);
    const previous = this.#snapshotSeq;
    // With snapshotLoopShare < 1, the writer's own event-loop time (producing each part) is paid back in idle time
    // while commits are waiting or in progress, so that it takes at most that share of the loop from them: taking
    // turns with commit groups as an equal can halve the ledger's throughput for the snapshot's duration. With
    // nothing to commit (close, an idle ledger) it runs at full speed.
    let owed = 0;
    let busy = 0;
    let paused = 0;
    const parts = timedParts(snap.parts, (ms) => {
      busy += ms;
      owed += (ms * (1 - this.#snapshotLoopShare)) / this.#snapshotLoopShare;
    });
    const pause = (): Promise<void> => {
      // Paced only when that helps commits: not when none wait, nor when they wait for a job that waits for this snapshot.
      if (this.#inJob || (!this.#committing && this.#queue.length === 0)) owed = 0;
      if (owed < 1) return nextTurn();
      const wait = Math.min(owed, 50);
      owed -= wait;
      paused += wait;
      return new Promise<void>((resolve) => setTimeout(resolve, wait));
    };
    const p = writeSnapshotFile(this.dir, name, parts, this.#fs, pause, this.#snapshotSyncEveryBytes)
      .then(async () => {
        // The new snapshot is durable and verified: only now do older ones go (the one before it stays, a
        // fallback should this one ever read back bad).
        this.#snapshotSeq = covers;
        this.#snapshotFailed = false;
        for (const n of await readdir(this.dir)) {
          const s = parseSnapshotName(n);
          if (s !== undefined && s < previous && s < covers) await unlink(join(this.dir, n));
        }
      })
      .catch((err: unknown) => {
        // Not fatal: the journal still holds everything; the next checkpoint tries again. Said once per streak.
        if (!this.#snapshotFailed) {
          this.#log(`cannot write the journal ledger snapshot ${join(this.dir, name)} (${err instanceof Error ? err.message : String(err)}); the journal still holds every call, the next checkpoint tries again`);
        }
        this.#snapshotFailed = true;
        this.#bytesSinceSnapshot = this.#snapshotEveryBytes;
      })
      .finally(() => {
        snap.done();
        this.#snapshotting = undefined;
        this.#trace?.snapshot?.(started, performance.now(), busy, paused);
      });
    this.#snapshotting = p;
    return p;
  }

  // ---- queries ----

  async ping(): Promise<void> {
    const down = this.#unavailable();
    if (down) throw down;
  }

  /** The period's state; throws when the ledger is closed or broken. */
  #query(periodStart: Date | string): PeriodState | undefined {
    const down = this.#unavailable();
    if (down) throw down;
    return this.#state.periods.get(isoOf(periodStart));
  }

  async loadPeriodRollups(periodStart: Date | string, options: LoadRollupsOptions = {}): Promise<PeriodRollup[]> {
    return queries.periodRollups(this.#query(periodStart), isoOf(periodStart), options);
  }

  async *scanPeriodRollups(periodStart: Date | string, options: ScanRollupsOptions = {}): AsyncGenerator<PeriodRollup> {
    yield* queries.scanPeriodRollups(this.#query(periodStart), isoOf(periodStart), options.userId);
  }

  async userModelUsage(userId: string, periodStart: Date | string): Promise<ModelUsage[]> {
    return queries.userModelUsage(this.#query(periodStart), userId);
  }

  async userPeriodUsage(userId: string, periodStart: Date | string): Promise<UserPeriodUsage> {
    return queries.userPeriodUsage(this.#query(periodStart), userId, isoOf(periodStart));
  }

  async periodModelUsage(periodStart: Date | string): Promise<ModelUsage[]> {
    return queries.periodModelUsage(this.#query(periodStart));
  }

  async providerPeriodSpend(periodStart: Date | string): Promise<ProviderSpend[]> {
    return queries.providerPeriodSpend(this.#query(periodStart));
  }

  async periodSummary(periodStart: Date | string): Promise<PeriodSummary> {
    return queries.periodSummary(this.#query(periodStart), isoOf(periodStart));
  }

  // ---- retention ----

  /**
   * The segments as they are now (the current one up to its committed bytes), read one at a time: commits go on
   * meanwhile into later bytes, and a segment pruned before its turn is skipped (its calls are gone).
   */
  scanCalls(filter: CallFilter = {}): AsyncIterable<LedgerCall> {
    const f = normaliseFilter(filter);
    const down = this.#unavailable();
    if (down) throw down;
    return scanJournalSegments(this.dir, this.#segments.map((s) => ({ seq: s.seq, bytes: s.bytes })), f, this.#state.adjusted);
  }

  /**
   * Applies a re-pricing: checked against the state first (each call's old cost is the one in force, no total
   * goes negative), then one journal entry (the audit record + every adjusted call) written and synced, then the
   * totals changed: all of it or nothing, between commit groups.
   */
  async applyReprice(request: RepriceRequest): Promise<RepriceAudit> {
    validateRepriceRequest(request);
    const down = this.#unavailable();
    if (down) throw down;
    return this.#exclusive(async () => {
      const now = this.#clock.now().getTime();
      const audit = auditOf(request, newAuditId(now, () => randomBytes(4).toString('hex')), new Date(now).toISOString());
      this.#state.applyAdjustments(audit, request.adjustments, true);
      await this.#append(encodeAdjustment(now, audit, request.adjustments), now, 0);
      this.#state.applyAdjustments(audit, request.adjustments, false);
      return audit;
    });
  }

  async repriceAudits(periodStart?: Date | string): Promise<RepriceAudit[]> {
    const down = this.#unavailable();
    if (down) throw down;
    const ps = periodStart === undefined ? undefined : isoOf(periodStart);
    return this.#state.audits.filter((a) => ps === undefined || a.periods.includes(ps));
  }

  /** The billing periods the ledger holds totals for (ISO instants), oldest first (`tokenmeter ledger export`). */
  periodStarts(): string[] {
    const down = this.#unavailable();
    if (down) throw down;
    return [...this.#state.periods.keys()].sort();
  }

  async prune(options: PruneOptions): Promise<PruneResult> {
    const { olderThan, before } = pruneArguments(options, this.#clock, this.dedupWindowMillis);
    const down = this.#unavailable();
    if (down) throw down;
    return this.#exclusive(async () => {
      const cut = olderThan.getTime();
      // A segment is deleted only once a snapshot holds its totals (and the current one is sealed first).
      if (pruneNeedsSnapshot(this.#segments, this.#current, this.#snapshotSeq, cut)) {
        await this.#snapshotting;
        await this.#startSnapshot();
        if (this.#snapshotting) await this.#snapshotting;
      }
      const { keep, callsDeleted } = deletePrunedSegments(this.dir, this.#segments, this.#current, this.#snapshotSeq, cut);
      this.#segments = keep;
      // Dedup keys of whole days before the cut are gone with their calls (the cut is outside the window).
      this.#state.dropDaysBefore(cut);
      let rollupRowsDeleted = 0;
      if (before) {
        const now = this.#clock.now().getTime();
        await this.#append(encodePrune(now, before.getTime()), now, 0);
        rollupRowsDeleted = this.#state.dropRollupsBefore(before.getTime());
      }
      return { callsDeleted, rollupRowsDeleted };
    });
  }

  /** Commits what is queued, writes a snapshot (a fast next open), releases the directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#exclusive(async () => {
      while (this.#queue.length > 0) await this.#commitGroup(this.#queue.splice(0));
      await this.#snapshotting;
      if (this.#snapshotOnClose && this.#broken === undefined && (this.#bytesSinceSnapshot > 0 || this.#current !== undefined)) await this.#startSnapshot();
    }).finally(() => {
      this.#closeFd();
      this.#release();
    });
  }

  /** Bytes of journal written since the last snapshot (tests and benchmarks). */
  get journalBytesSinceSnapshot(): number {
    return this.#bytesSinceSnapshot;
  }

  /** Writes a snapshot now and waits for it (tests, benchmarks). */
  checkpoint(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#snapshotting;
      await this.#startSnapshot();
    });
  }
}
