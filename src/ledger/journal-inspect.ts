/**
 * The journal ledger's directory read from outside the ledger, for `tokenmeter ledger verify | dump | backup`:
 * what the directory holds, whether every file checks out and the totals recomputed from the calls equal the
 * snapshot's, and a consistent copy taken while an exporter keeps writing.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ExactDecimal } from '../money/index.js';
import { netOfDiscount } from './call-scan.js';
import { LedgerError } from './errors.js';
import { decodeEntry, ENTRY_ADJUST } from './journal-entry.js';
import { callKey } from './adjustments.js';
import { checkSegmentHeader, FORMAT_VERSION, fsyncDirectory, parseFormatText, parseSegmentName, parseSnapshotName, readEntries, segmentName, snapshotName } from './journal-format.js';
import { loadSnapshot } from './journal-snapshot.js';
import { JournalState, planRows, type AdjustedCall, type SegmentInfo } from './journal-state.js';

export const FORMAT_FILE = 'FORMAT';
/** The newest journal format this tokenmeter reads (FORMAT names the directory's; every older one is read too). */
const READS_FORMAT = FORMAT_VERSION;
/** The last tokenmeter release whose embedded ledger was PGlite (`pglite:` storage): it reads and exports those. */
export const LAST_PGLITE_VERSION = '0.1.0';

/** Why a directory of PGlite files cannot be opened any more, and what to do with it. */
export function pgliteRetiredMessage(dir: string): string {
  return (
    `${dir} holds a PGlite ledger (the embedded store of tokenmeter ${LAST_PGLITE_VERSION} and earlier), which this tokenmeter no longer reads. ` +
    `To read its data, run tokenmeter ${LAST_PGLITE_VERSION}, the last version with PGlite, with storage "pglite:${dir}" (its usage API and /metrics ` +
    `serve the totals). To start a new embedded ledger, point storage at another directory.`
  );
}

export interface JournalListing {
  dir: string;
  /** The FORMAT file's text. */
  format: string;
  /** Segment sequence numbers, oldest first. */
  segments: number[];
  /** Snapshot sequence numbers (each covers the segments below it), oldest first. */
  snapshots: number[];
}

/** Checks that `dir` is a journal ledger directory and lists its files; a LedgerError saying what to do otherwise. */
export function listJournalDirectory(dir: string): JournalListing {
  const abs = resolve(dir);
  let st;
  try {
    st = statSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LedgerError(`${abs} does not exist: give the ledger directory (the exporter's storage setting)`);
    throw new LedgerError(`cannot read ${abs}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) throw new LedgerError(`${abs} is not a directory: give the ledger directory (the exporter's storage setting)`);
  if (existsSync(join(abs, 'PG_VERSION'))) throw new LedgerError(pgliteRetiredMessage(abs));
  const formatPath = join(abs, FORMAT_FILE);
  let format: string;
  try {
    format = readFileSync(formatPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LedgerError(`${abs} is not a tokenmeter ledger directory (no ${FORMAT_FILE} file): give the directory the exporter's storage setting names`);
    }
    throw new LedgerError(`cannot read ${formatPath}: ${(err as Error).message}`, { cause: err });
  }
  const version = parseFormatText(format) ?? NaN;
  if (!(version >= 1 && version <= READS_FORMAT)) {
    throw new LedgerError(`${formatPath} says "${format.trim().slice(0, 200)}": this tokenmeter reads journal ledger formats 1 to ${READS_FORMAT}; use the tokenmeter that wrote it`);
  }
  let names: string[];
  try {
    names = readdirSync(abs);
  } catch (err) {
    throw new LedgerError(`cannot list ${abs}: ${(err as Error).message}`, { cause: err });
  }
  const nums = (f: (n: string) => number | undefined) => names.map(f).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
  return { dir: abs, format, segments: nums(parseSegmentName), snapshots: nums(parseSnapshotName) };
}

// ---- verify ----

/** One total as verify compares it: counters and exact money, as a canonical line. */
class Totals {
  readonly rows = new Map<string, { counts: number[]; money: ExactDecimal[] }>();

  add(key: string, counts: number[], money: (string | ExactDecimal)[]): void {
    let r = this.rows.get(key);
    if (!r) this.rows.set(key, (r = { counts: counts.map(() => 0), money: money.map(() => new ExactDecimal(0)) }));
    counts.forEach((c, k) => (r.counts[k] += c));
    money.forEach((m, k) => (r.money[k] = r.money[k].plus(m)));
  }

  dropPeriodsBefore(millis: number): void {
    for (const k of this.rows.keys()) if (Date.parse(k.slice(k.indexOf(' ') + 1, k.indexOf('|'))) < millis) this.rows.delete(k);
  }

  line(key: string): string | undefined {
    const r = this.rows.get(key);
    return r && `${r.counts.join(',')} ${r.money.map((m) => m.toFixed()).join(',')}`;
  }
}

export interface SegmentReport {
  seq: number;
  calls: number;
  bytes: number;
  /** Bytes after the last complete entry of the newest segment: a write in progress or cut by a crash. */
  unfinishedTailBytes: number;
}

export interface VerifyReport {
  dir: string;
  segments: SegmentReport[];
  /** Sequence numbers below the newest segment that are not on disk: deleted by prune (their calls are gone). */
  prunedSegments: number[];
  snapshot: { seq: number; periods: number; rows: number } | undefined;
  calls: number;
  /** Rows of the snapshot's totals equal to the totals recomputed from the calls. */
  rowsMatching: number;
  /** Rows the calls cannot be checked against because calls they counted were pruned. */
  rowsWithPrunedCalls: number;
  /** Everything wrong, each naming the file and what to do; empty when the directory verifies. */
  problems: string[];
  /** Things to know that are not errors. */
  notes: string[];
}

/**
 * Reads every file of the directory (without writing anything): each segment entry's checksum and decoding, the
 * snapshots' checksums, the per-segment call counts the snapshot lists, and the snapshot's totals (per user and
 * plan, per user and model, per model, per provider) against the totals recomputed from the calls it covers.
 */
export function verifyJournalDirectory(dir: string): VerifyReport {
  const listing = listJournalDirectory(dir);
  const report: VerifyReport = {
    dir: listing.dir,
    segments: [],
    prunedSegments: [],
    snapshot: undefined,
    calls: 0,
    rowsMatching: 0,
    rowsWithPrunedCalls: 0,
    problems: [],
    notes: [],
  };
  const { segments, snapshots } = listing;
  const newestSeg = segments.length > 0 ? segments[segments.length - 1] : 0;
  const present = new Set(segments);
  for (let s = 1; s < newestSeg; s++) if (!present.has(s)) report.prunedSegments.push(s);

  // The snapshots: every one must check out; the newest is the one the ledger opens with, read by the ledger's
  // own snapshot reader (so verify reads every format the ledger reads).
  let snap: { covers: number; state: JournalState; segments: SegmentInfo[] } | undefined;
  for (const seq of snapshots) {
    const file = join(listing.dir, snapshotName(seq));
    try {
      const state = new JournalState();
      const segs = loadSnapshot(state, file).segments;
      if (seq === snapshots[snapshots.length - 1]) snap = { covers: seq, state, segments: segs };
    } catch (err) {
      report.problems.push(err instanceof LedgerError ? err.message : `${file}: ${(err as Error).message}; restore the directory from a backup`);
    }
  }
  const covers = snap?.covers ?? 0;
  // Totals recomputed from the calls the snapshot covers (segments below `covers`), prune entries applied in order.
  const recomputed = { users: new Totals(), userModels: new Totals(), models: new Totals(), providers: new Totals() };
  for (const seq of segments) {
    const file = join(listing.dir, segmentName(seq));
    const seg: SegmentReport = { seq, calls: 0, bytes: 0, unfinishedTailBytes: 0 };
    report.segments.push(seg);
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (err) {
      report.problems.push(`cannot read ${file}: ${(err as Error).message}`);
      continue;
    }
    try {
      const res = readEntries(buf, file, seq === newestSeg, (payload, offset) => {
        if (checkSegmentHeader(payload, file, offset)) return; // format 2: the segment's header entry
        let entry;
        try {
          entry = decodeEntry(payload, (s) => s);
        } catch (err) {
          throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: ${(err as Error).message}; restore the directory from a backup`);
        }
        if (entry.kind === 'prune') {
          if (seq < covers) for (const t of Object.values(recomputed)) t.dropPeriodsBefore(entry.rollupsBeforeMillis);
          return;
        }
        if (entry.kind === 'adjust') {
          // A re-pricing: the costs of the rows its calls are in change by the differences (tokens and requests stay).
          if (seq >= covers) return;
          let calls;
          try {
            calls = entry.read().calls;
          } catch (err) {
            throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: ${(err as Error).message}; restore the directory from a backup`);
          }
          for (const a of calls) {
            const ps = new Date(a.periodStart).toISOString();
            const net = new ExactDecimal(a.new.totalCostUsd).minus(a.old.totalCostUsd);
            const unpriced = a.old.priced ? 0 : -1;
            const shift = (t: Totals, key: string, counts: number[], money: ExactDecimal[]) => {
              if (t.rows.has(key)) t.add(key, counts, money);
            };
            shift(recomputed.users, `user ${ps}|${a.userId}|${a.plan}`, [0, 0, 0, 0, 0, 0, 0], [net]);
            shift(recomputed.userModels, `user-model ${ps}|${a.userId}|${a.plan}|${a.provider}|${a.model}`, [0, 0, 0, 0, 0, 0, 0, unpriced, 0], [net]);
            shift(recomputed.models, `model ${ps}|${a.provider}|${a.model}`, [0, 0, 0, 0, 0, 0, 0, unpriced, 0], [net]);
            shift(recomputed.providers, `provider ${ps}|${a.provider}`, [0], [
              new ExactDecimal(a.new.grossCostUsd).minus(a.old.grossCostUsd),
              new ExactDecimal(a.new.discountUsd).minus(a.old.discountUsd),
              net,
            ]);
          }
          return;
        }
        if (entry.kind !== 'commit') return;
        seg.calls += entry.calls;
        if (seq >= covers) return;
        entry.forEach((c) => {
          const r = netOfDiscount(c.record(), c.discount);
          const tokens = [c.t0, c.t1, c.t2, c.t3, c.t4, c.t5];
          const gross = r.grossCostUsd ?? r.totalCostUsd;
          const flags = [c.priced ? 0 : 1, c.estimated ? 1 : 0];
          recomputed.users.add(`user ${c.periodStart}|${c.userId}|${c.plan}`, [...tokens, 1], [r.totalCostUsd]);
          recomputed.userModels.add(`user-model ${c.periodStart}|${c.userId}|${c.plan}|${c.provider}|${c.model}`, [...tokens, 1, ...flags], [r.totalCostUsd]);
          recomputed.models.add(`model ${c.periodStart}|${c.provider}|${c.model}`, [...tokens, 1, ...flags], [r.totalCostUsd]);
          recomputed.providers.add(`provider ${c.periodStart}|${c.provider}`, [1], [gross, r.discountUsd ?? '0', r.totalCostUsd]);
        });
      });
      seg.bytes = res.validBytes;
      seg.unfinishedTailBytes = buf.length - res.validBytes;
      if (res.tornTail) {
        report.notes.push(
          `${file} ends with ${seg.unfinishedTailBytes} bytes of an unfinished write (in progress, or cut short by a crash: never acknowledged; the next start drops it)`,
        );
      }
    } catch (err) {
      report.problems.push(err instanceof LedgerError ? err.message : `${file}: ${(err as Error).message}`);
    }
    report.calls += seg.calls;
  }
  if (!snap) {
    if (segments.length > 0) report.notes.push('no snapshot yet: the ledger replays every segment when it opens (nothing to compare totals with)');
    return report;
  }

  // The snapshot's list of segments: counts and sizes of those still on disk must match.
  const bySeq = new Map(report.segments.map((s) => [s.seq, s]));
  for (const { seq, records, bytes } of snap.segments) {
    const s = bySeq.get(seq);
    if (!s) continue; // pruned after the snapshot was written
    if (s.calls !== records || s.bytes !== bytes) {
      report.problems.push(
        `${join(listing.dir, segmentName(seq))} holds ${s.calls} calls in ${s.bytes} bytes, the snapshot ${snapshotName(covers)} recorded ${records} calls in ${bytes} bytes; restore the directory from a backup`,
      );
    }
  }
  const prunedCovered = report.prunedSegments.some((s) => s < covers);
  if (report.prunedSegments.some((s) => s >= covers)) {
    report.problems.push(`segments ${report.prunedSegments.filter((s) => s >= covers).join(', ')} are missing but not covered by the snapshot: their calls are lost; restore the directory from a backup`);
  }

  // The snapshot's totals, in the same keyed form.
  const stored = { users: new Totals(), userModels: new Totals(), models: new Totals(), providers: new Totals() };
  for (const [ps, p] of snap.state.periods) {
    for (const head of p.users.values()) {
      for (const u of planRows(head)) {
        stored.users.add(`user ${ps}|${u.userId}|${u.plan}`, [...u.tokens(), u.requests], [u.toFixed()]);
        for (const m of u.modelRows()) {
          stored.userModels.add(`user-model ${ps}|${u.userId}|${u.plan}|${m.provider}|${m.model}`, [...m.tokens(), m.requests, m.unpriced, m.estimated], [m.toFixed()]);
        }
      }
    }
    for (const m of p.models.values()) stored.models.add(`model ${ps}|${m.provider}|${m.model}`, [...m.tokens(), m.requests, m.unpriced, m.estimated], [m.toFixed()]);
    for (const sp of p.providers.values()) stored.providers.add(`provider ${ps}|${sp.provider}`, [sp.requests], [sp.gross.toFixed(), sp.discount.toFixed(), sp.net.toFixed()]);
  }
  let rows = 0;
  const mismatches: string[] = [];
  for (const kind of ['users', 'userModels', 'models', 'providers'] as const) {
    const a = stored[kind];
    const b = recomputed[kind];
    for (const key of new Set([...a.rows.keys(), ...b.rows.keys()])) {
      rows += a.rows.has(key) ? 1 : 0;
      const want = a.line(key);
      const got = b.line(key);
      if (want === got) {
        report.rowsMatching++;
        continue;
      }
      // With calls pruned, a total may count more calls than remain: only fewer-or-equal is consistent.
      if (prunedCovered && want !== undefined && atMost(b.rows.get(key), a.rows.get(key)!)) {
        report.rowsWithPrunedCalls++;
        continue;
      }
      mismatches.push(`${key}: snapshot ${want ?? '(none)'}, from the calls ${got ?? '(none)'}`);
    }
  }
  report.snapshot = { seq: covers, periods: snap.state.periods.size, rows };
  if (mismatches.length > 0) {
    report.problems.push(
      `the snapshot ${snapshotName(covers)} disagrees with the calls it covers in ${mismatches.length} totals (tokens..., requests[, unpriced, estimated] cost...): ` +
        `${mismatches.slice(0, 5).join('; ')}${mismatches.length > 5 ? '; ...' : ''}. Move the snapshot file aside: the ledger then rebuilds its totals from the calls`,
    );
  }
  if (prunedCovered) {
    report.notes.push(`segments ${compactRanges(report.prunedSegments)} were pruned (retention): totals that counted their calls are checked only to be at least the calls that remain`);
  }
  return report;
}

function atMost(got: { counts: number[]; money: ExactDecimal[] } | undefined, want: { counts: number[]; money: ExactDecimal[] }): boolean {
  if (!got) return true;
  return got.counts.every((c, k) => c <= want.counts[k]) && got.money.every((m, k) => m.lte(want.money[k]));
}

function compactRanges(nums: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < nums.length; ) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
    out.push(i === j ? String(nums[i]) : `${nums[i]}-${nums[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

// ---- backup ----

export interface BackupResult {
  dest: string;
  segments: number;
  snapshot: number | undefined;
  bytes: number;
  /** How many times the copy started over because the exporter replaced a snapshot or pruned meanwhile. */
  restarts: number;
}

/**
 * Copies the ledger in `dir` to the new directory `dest` consistently while an exporter may be writing to it.
 * The copy is the journal as of one moment: the newest snapshot then, every segment listed then (each sealed one
 * whole, the one being written up to its last complete entry), FORMAT. A snapshot or segment that disappears
 * before it is copied (a newer snapshot replaced it, prune deleted segments the copied snapshot does not cover)
 * starts the copy over. Every file is fsynced. Never writes to `dir`.
 */
export function backupJournalDirectory(dir: string, dest: string): BackupResult {
  const target = resolve(dest);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
    throw new LedgerError(`${target} exists and is not an empty directory: give a new directory for the copy`);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const listing = listJournalDirectory(dir);
    try {
      mkdirSync(target, { recursive: true });
    } catch (err) {
      throw new LedgerError(`cannot create ${target}: ${(err as Error).message}`, { cause: err });
    }
    const copied: string[] = [];
    try {
      const result = copyOnce(listing, target, copied);
      return { ...result, restarts: attempt };
    } catch (err) {
      if (!(err instanceof RestartCopy)) throw err;
      for (const n of copied) rmQuiet(join(target, n));
    }
  }
  throw new LedgerError(`${resolve(dir)} kept changing under the copy (snapshots replaced or segments pruned 20 times); try again, or stop the exporter for the copy`);
}

class RestartCopy extends Error {}

function copyOnce(listing: JournalListing, target: string, copied: string[]): Omit<BackupResult, 'restarts'> {
  const snapSeq = listing.snapshots.length > 0 ? listing.snapshots[listing.snapshots.length - 1] : undefined;
  let bytes = 0;
  const put = (name: string, buf: Buffer) => {
    copied.push(name);
    writeDurably(join(target, name), buf);
    bytes += buf.length;
  };
  if (snapSeq !== undefined) {
    const file = join(listing.dir, snapshotName(snapSeq));
    const buf = readOrUndefined(file);
    if (buf === undefined) throw new RestartCopy(); // replaced by a newer snapshot meanwhile
    put(snapshotName(snapSeq), buf);
    // The copy is read back with the ledger's own snapshot reader: a snapshot is renamed into place only when
    // whole, so a failure here is a damaged original, said as such.
    loadSnapshot(new JournalState(), join(target, snapshotName(snapSeq)));
  }
  const newest = listing.segments[listing.segments.length - 1];
  for (const seq of listing.segments) {
    const file = join(listing.dir, segmentName(seq));
    const buf = readOrUndefined(file);
    if (buf === undefined) {
      // Pruned meanwhile: fine if the copied snapshot holds its totals, else the copy would lose calls.
      if (snapSeq !== undefined && seq < snapSeq) continue;
      throw new RestartCopy();
    }
    // Up to the last complete entry: the segment being written may end inside the entry in progress.
    const { validBytes } = readEntries(buf, file, seq === newest, () => {});
    put(segmentName(seq), buf.subarray(0, validBytes));
  }
  put(FORMAT_FILE, Buffer.from(listing.format, 'utf8'));
  fsyncDirectory(target);
  return { dest: target, segments: listing.segments.length, snapshot: snapSeq, bytes };
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LedgerError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function writeDurably(file: string, buf: Buffer): void {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'wx');
    let done = 0;
    while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
    fsyncSync(fd);
  } catch (err) {
    throw new LedgerError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {}
}

/**
 * The re-pricings of a directory read from outside (`tokenmeter ledger dump`): the adjusted calls the newest
 * readable snapshot holds, then the adjustment entries of the segments after it, in order. Empty when the ledger
 * was never re-priced (then nothing but the snapshot's and segments' headers is decoded).
 */
export function journalAdjustments(listing: JournalListing): Map<string, AdjustedCall> {
  let state = new JournalState();
  let covers = 0;
  for (let k = listing.snapshots.length - 1; k >= 0; k--) {
    const seq = listing.snapshots[k]!;
    try {
      const s = new JournalState();
      loadSnapshot(s, join(listing.dir, snapshotName(seq)));
      state = s;
      covers = seq;
      break;
    } catch {
      // An unreadable snapshot: the older one (verify names the problem).
    }
  }
  const adjusted = new Map(state.adjusted);
  const newest = listing.segments[listing.segments.length - 1];
  for (const seq of listing.segments) {
    if (seq < covers) continue;
    const file = join(listing.dir, segmentName(seq));
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch {
      continue; // pruned meanwhile
    }
    readEntries(buf, file, seq === newest, (payload, offset) => {
      if (checkSegmentHeader(payload, file, offset) || payload[0] !== ENTRY_ADJUST) return;
      const entry = decodeEntry(payload, (s) => s);
      if (entry.kind !== 'adjust') return;
      const { audit, calls } = entry.read();
      for (const a of calls) adjusted.set(callKey(a.traceId, a.spanId), { auditId: audit.id, costs: a.new });
    });
  }
  return adjusted;
}
