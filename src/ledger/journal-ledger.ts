/**
 * The embedded ledger: an append-only journal of committed calls plus the period totals in memory.
 *
 * A commit appends one checksummed entry (every new call of the group) to the current segment file and
 * fdatasyncs it before it resolves; commits that arrive meanwhile queue and go out together in the next
 * write + sync. The state (dedup keys by received day, per-period totals) lives in memory and is checkpointed
 * to an atomically written snapshot; opening loads the newest snapshot and replays the segments after it.
 * See README.md in this folder for the file layout and the guarantees.
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  ftruncate,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  write,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { Decimal } from 'decimal.js';
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import { allocateDiscount, ExactDecimal } from '../pricing/index.js';
import { systemClock, type Clock } from '../plans/clock.js';
import { totalTokens } from '../usage/usage.js';
import { acquireDirectoryLock } from './dir-lock.js';
import { LedgerError, LedgerUnavailableError } from './errors.js';
import { DedupKeys, readIdWords } from './dedup-keys.js';
import { CommitEncoder, decodeEntry, ENTRY_COMMIT, encodePrune } from './journal-entry.js';
import { Money } from './money.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  frameEntry,
  fsyncDirectory,
  parseSegmentName,
  parseSnapshotName,
  readEntries,
  segmentName,
  snapshotName,
  writeFileAtomically,
} from './journal-format.js';
import {
  DEFAULT_DEDUP_WINDOW_MILLIS,
  isPrevalidated,
  pruneArguments,
  validateRecord,
  withNetCosts,
  type CommitOptions,
  type DiscountFunction,
  type Ledger,
  type LedgerOptions,
  type LoadRollupsOptions,
  type ModelUsage,
  type PeriodSummary,
  type ProviderSpend,
  type PruneOptions,
  type PruneResult,
  type TokenCounts,
  type UserPeriodUsage,
} from './ledger.js';
import type { CommitOutcome, CommitResult, LedgerRecord, PeriodRollup } from './types.js';
import { normaliseFilter, scanJournalSegments, type CallFilter, type LedgerCall } from './call-scan.js';

const Exact = ExactDecimal;
type Exact = ExactDecimal;
const ZERO = new Exact(0);
const DAY_MILLIS = 24 * 60 * 60 * 1000;
const FORMAT_FILE = 'FORMAT';
const FORMAT_TEXT = 'tokenmeter journal ledger, format 1\n';

export interface JournalLedgerOptions {
  /** Start a new segment file when the current one reaches this size (default 64 MiB). */
  segmentMaxBytes?: number;
  /** Write a snapshot after this many journal bytes since the last one (default 64 MiB): bounds replay at open. */
  snapshotEveryBytes?: number;
  /** Write a snapshot on close (default true: the next open reads it instead of replaying). Tests turn it off. */
  snapshotOnClose?: boolean;
}

/** Six token counters: the five buckets + the 1-hour part of cache_write (the snapshot's form). */
type Tokens = [number, number, number, number, number, number];

/**
 * One total: its exact cost (the Money it extends), token counters as fields (no array per row), requests. Rows
 * are the bulk of the ledger's heap (a few per active user), so they are plain classes, chained instead of a Map
 * per user.
 */
class Row extends Money {
  t0 = 0;
  t1 = 0;
  t2 = 0;
  t3 = 0;
  t4 = 0;
  t5 = 0;
  requests = 0;

  addTokens(t0: number, t1: number, t2: number, t3: number, t4: number, t5: number, net: Money): void {
    this.t0 += t0;
    this.t1 += t1;
    this.t2 += t2;
    this.t3 += t3;
    this.t4 += t4;
    this.t5 += t5;
    this.requests += 1;
    this.add(net);
  }

  tokens(): Tokens {
    return [this.t0, this.t1, this.t2, this.t3, this.t4, this.t5];
  }

  setTokens(t: Tokens): void {
    [this.t0, this.t1, this.t2, this.t3, this.t4, this.t5] = t;
  }

  counts(): TokenCounts {
    return { input: this.t0, cache_read: this.t1, cache_write: this.t2, output: this.t3, reasoning: this.t4 };
  }
}

class ModelRow extends Row {
  unpriced = 0;
  estimated = 0;
  /** The user's next provider/model (per-user rows only). */
  next: ModelRow | undefined = undefined;

  constructor(
    readonly provider: string,
    readonly model: string,
  ) {
    super();
  }
}

class UserRow extends Row {
  /** The user's usage per provider and model in this plan: the usage API's per-user breakdown. */
  models: ModelRow | undefined = undefined;
  /** The same user's row under another plan (usually none). */
  next: UserRow | undefined = undefined;

  constructor(
    readonly userId: string,
    readonly plan: string,
  ) {
    super();
  }

  /** The per-model row, created when missing. */
  model(provider: string, model: string): ModelRow {
    let m = this.models;
    while (m !== undefined && (m.model !== model || m.provider !== provider)) m = m.next;
    if (m === undefined) {
      m = new ModelRow(provider, model);
      m.next = this.models;
      this.models = m;
    }
    return m;
  }

  modelRows(): ModelRow[] {
    const out: ModelRow[] = [];
    for (let m = this.models; m !== undefined; m = m.next) out.push(m);
    return out;
  }
}

/** Every plan's row of one user (the chain from `head`). */
function planRows(head: UserRow | undefined): UserRow[] {
  const out: UserRow[] = [];
  for (let u = head; u !== undefined; u = u.next) out.push(u);
  return out;
}

interface SpendRow {
  provider: string;
  gross: Money;
  discount: Money;
  net: Money;
  requests: number;
}

interface PeriodState {
  /** user → their rows (one per plan, chained). */
  users: Map<string, UserRow>;
  /** `provider\0model` → totals for everyone. */
  models: Map<string, ModelRow>;
  providers: Map<string, SpendRow>;
}

interface SegmentInfo {
  seq: number;
  records: number;
  bytes: number;
  /** Latest received time of a call in the segment (0 when it holds none). */
  maxReceivedMillis: number;
  /** UTC day number of the received times it holds (segments roll at midnight so prune works by day). */
  day: number;
}

interface Waiter {
  records: LedgerRecord[];
  discounts: DiscountFunction | undefined;
  /** Called synchronously once the caller's records are durable (before the totals are applied), if set. */
  onDurable?: (() => void) | undefined;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

interface Prepared {
  waiter: Waiter;
  outcomes: CommitOutcome[];
  /** Indices of the records committed now, in input order. */
  fresh: number[];
  /** Discount per fresh record (undefined = none), parallel to `fresh`. */
  discounts: (Exact | undefined)[];
  /** Net per-type costs for discounted records (by index). */
  nets: Map<number, { costUsd: Record<TokenType, Exact>; total: Exact; gross: Exact; discount: Exact }>;
  /** Every record's id words (ID_WORDS per record, by input index; see readIdWords). */
  ids: Uint32Array;
}

const ID_WORDS = 6;

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}


function isoOf(periodStart: Date | string): string {
  const d = typeof periodStart === 'string' ? new Date(periodStart) : periodStart;
  if (!Number.isFinite(d.getTime())) throw new LedgerError(`invalid period start: ${String(periodStart)}`);
  return d.toISOString();
}

function promisify<T>(fn: (cb: (err: NodeJS.ErrnoException | null, v?: T) => void) => void): Promise<T> {
  return new Promise((res, rej) => fn((err, v) => (err ? rej(err) : res(v as T))));
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
  #release: () => void = () => {};

  readonly #periods = new Map<string, PeriodState>();
  /** Dedup keys (trace id + span id) by received UTC day. */
  readonly #buckets = new Map<number, DedupKeys>();
  /** The same sets, newest day first (the order lookups try them). */
  #bucketList: DedupKeys[] = [];
  readonly #isoCache = new Map<string, string>();
  #lastIsoIn: string | undefined = undefined;
  #lastIsoOut = '';
  /** `provider\0model` keys by provider and model: built once, so no string is concatenated per record. */
  readonly #modelKeys = new Map<string, Map<string, string>>();
  /** Reused for each record's gross cost while it is added to the totals. */
  readonly #scratch = new Money();
  /**
   * Replay's strings are slices of a whole journal entry (V8 keeps the entry alive as long as a slice lives), so
   * the names kept in the totals are copies, each made once; repeats also find the same string (its hash cached).
   */
  readonly #names = new Map<string, string>();
  readonly #intern = (s: string): string => {
    let v = this.#names.get(s);
    if (v === undefined) {
      v = s.length >= 13 ? Buffer.from(s, 'utf8').toString('utf8') : s; // V8 copies shorter substrings anyway
      if (this.#names.size >= 100_000) this.#names.clear();
      this.#names.set(v, v);
    }
    return v;
  };

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
  }

  /** Opens (creating if missing) the journal ledger in `dir`: newest snapshot + replay of the later segments. */
  static async open(dir: string, options: LedgerOptions = {}, journal: JournalLedgerOptions = {}): Promise<JournalLedger> {
    const abs = resolve(dir);
    try {
      mkdirSync(abs, { recursive: true });
    } catch (err) {
      throw new LedgerError(`cannot create the embedded ledger directory ${abs}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (existsSync(join(abs, 'PG_VERSION'))) {
      throw new LedgerError(
        `${abs} holds a PGlite ledger (from an earlier tokenmeter), not the journal ledger this storage setting opens. ` +
          `To keep using it, set storage to "pglite:${abs}"; to start a new embedded ledger, point storage at another directory.`,
      );
    }
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
    const formatPath = join(this.dir, FORMAT_FILE);
    if (existsSync(formatPath)) {
      const text = readFileSync(formatPath, 'utf8');
      if (text !== FORMAT_TEXT) throw new LedgerError(`${formatPath} says "${text.trim()}": this tokenmeter reads "${FORMAT_TEXT.trim()}"; upgrade tokenmeter`);
    } else {
      writeFileSync(formatPath, FORMAT_TEXT);
      fsyncDirectory(this.dir);
    }
    const names = readdirSync(this.dir);
    for (const n of names) if (n.endsWith('.tmp')) unlinkSync(join(this.dir, n)); // an interrupted snapshot
    const segSeqs = names.map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    const snapSeqs = names.map(parseSnapshotName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    let covered = 0;
    if (snapSeqs.length > 0) {
      covered = snapSeqs[snapSeqs.length - 1];
      this.#loadSnapshot(join(this.dir, snapshotName(covered)));
      this.#snapshotSeq = covered;
    }
    const known = new Set(this.#segments.map((s) => s.seq));
    const toReplay = segSeqs.filter((s) => s >= covered);
    for (const seq of segSeqs) if (seq < covered && !known.has(seq)) this.#segments.push(this.#scanSegment(seq)); // kept for retention only
    this.#segments.sort((a, b) => a.seq - b.seq);
    toReplay.forEach((seq, k) => this.#segments.push(this.#replaySegment(seq, k === toReplay.length - 1)));
    this.#nextSeq = Math.max(covered, segSeqs.length > 0 ? segSeqs[segSeqs.length - 1] + 1 : 1, 1);
    this.#expire(this.#clock.now().getTime());
    this.#names.clear();
  }

  /** Metadata of a segment already covered by the snapshot but missing from its list (should not happen). */
  #scanSegment(seq: number): SegmentInfo {
    const info: SegmentInfo = { seq, records: 0, bytes: 0, maxReceivedMillis: 0, day: 0 };
    const file = join(this.dir, segmentName(seq));
    const buf = readFileSync(file);
    info.bytes = buf.length;
    readEntries(buf, file, false, (payload) => {
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
    let entry;
    try {
      entry = decodeEntry(payload, this.#intern);
    } catch (err) {
      throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: ${(err as Error).message}; restore the directory from a backup`);
    }
    if (entry.kind === 'prune') {
      this.#dropRollupsBefore(entry.rollupsBeforeMillis);
      return;
    }
    const receivedAt = entry.receivedAtMillis;
    const day = Math.floor(receivedAt / DAY_MILLIS);
    const keep = (day + 1) * DAY_MILLIS > this.#clock.now().getTime() - this.dedupWindowMillis;
    const bucket = keep ? this.#bucket(day) : undefined;
    const gross = this.#scratch;
    entry.forEach((c) => {
      bucket?.addWords(c.words, c.idAt);
      gross.set(c.totalCostUsd);
      const discount = c.discount;
      this.#apply(
        c.periodStart, c.userId, c.plan, c.provider, c.model, c.t0, c.t1, c.t2, c.t3, c.t4, c.t5, c.priced, c.estimated,
        gross, discount === undefined ? undefined : Money.of(discount), discount === undefined ? gross : Money.of(new Exact(c.totalCostUsd).minus(discount).toFixed()),
      );
    });
    info.records += entry.calls;
    info.maxReceivedMillis = Math.max(info.maxReceivedMillis, receivedAt);
    info.day = day;
  }

  #loadSnapshot(file: string): void {
    const { json, binary } = decodeSnapshot(readFileSync(file), file);
    const s = JSON.parse(json) as SnapshotJson;
    this.#segments = s.segments.map(([seq, records, bytes, maxReceivedMillis]) => ({ seq, records, bytes, maxReceivedMillis, day: Math.floor(maxReceivedMillis / DAY_MILLIS) }));
    for (const [ps, users, models, providers] of s.periods) {
      const p = this.#period(ps);
      for (const [userId, plan, tokens, requests, cost, rows] of users) {
        const row = new UserRow(userId, plan);
        row.setTokens(tokens);
        row.requests = requests;
        row.addString(cost);
        for (const m of rows) {
          const r = modelRowOf(m);
          r.next = row.models;
          row.models = r;
        }
        row.next = p.users.get(userId);
        p.users.set(userId, row);
      }
      for (const m of models) p.models.set(this.#modelKey(m[0], m[1]), modelRowOf(m));
      for (const [provider, gross, discount, net, requests] of providers) {
        p.providers.set(provider, { provider, gross: Money.of(gross), discount: Money.of(discount), net: Money.of(net), requests });
      }
    }
    // Dedup keys: per bucket, f64 day, u32 count, then count × 24 bytes (see DedupKeys.toBuffer).
    let off = 0;
    while (off < binary.length) {
      const day = binary.readDoubleLE(off);
      const n = binary.readUInt32LE(off + 8);
      off += 12;
      this.#bucket(day).addBuffer(binary.subarray(off, off + 24 * n));
      off += 24 * n;
    }
    if (off !== binary.length) throw new LedgerError(`the journal ledger snapshot ${file} is corrupt (dedup keys); restore the directory from a backup`);
  }

  // ---- state ----

  #period(ps: string): PeriodState {
    let p = this.#periods.get(ps);
    if (!p) this.#periods.set(ps, (p = { users: new Map(), models: new Map(), providers: new Map() }));
    return p;
  }

  #bucket(day: number): DedupKeys {
    let set = this.#buckets.get(day);
    if (!set) {
      this.#buckets.set(day, (set = new DedupKeys()));
      this.#bucketList = [...this.#buckets.entries()].sort((a, b) => b[0] - a[0]).map((e) => e[1]);
    }
    return set;
  }

  /** Whether a bucket other than `except` holds the pair. */
  /** Whether the key whose words start at `at` in `w` is in another day's bucket (ids parsed once, not per day). */
  #seenElsewhere(w: Uint32Array, at: number, except: DedupKeys): boolean {
    const list = this.#bucketList;
    for (let k = 0; k < list.length; k++) if (list[k] !== except && list[k].hasWords(w, at)) return true;
    return false;
  }

  /** Forgets dedup keys of days entirely before the window (at least `dedupWindowMillis` are kept). */
  #expire(nowMillis: number): void {
    let dropped = false;
    for (const day of this.#buckets.keys()) {
      if ((day + 1) * DAY_MILLIS <= nowMillis - this.dedupWindowMillis) {
        this.#buckets.delete(day);
        dropped = true;
      }
    }
    if (dropped) this.#bucketList = [...this.#buckets.entries()].sort((a, b) => b[0] - a[0]).map((e) => e[1]);
  }

  /** Adds one committed call to the totals. `net` = gross - discount. */
  #apply(
    ps: string, userId: string, plan: string, provider: string, model: string,
    t0: number, t1: number, t2: number, t3: number, t4: number, t5: number,
    priced: boolean, estimated: boolean, gross: Money, discount: Money | undefined, net: Money,
  ): void {
    const p = this.#period(ps);
    const head = p.users.get(userId);
    let u = head;
    while (u !== undefined && u.plan !== plan) u = u.next;
    if (u === undefined) {
      u = new UserRow(userId, plan);
      u.next = head;
      p.users.set(userId, u);
    }
    u.addTokens(t0, t1, t2, t3, t4, t5, net);
    const um = u.model(provider, model);
    um.addTokens(t0, t1, t2, t3, t4, t5, net);
    addModel(um, priced, estimated);
    const mk = this.#modelKey(provider, model);
    let m = p.models.get(mk);
    if (!m) p.models.set(mk, (m = new ModelRow(provider, model)));
    m.addTokens(t0, t1, t2, t3, t4, t5, net);
    addModel(m, priced, estimated);
    let s = p.providers.get(provider);
    if (!s) p.providers.set(provider, (s = { provider, gross: new Money(), discount: new Money(), net: new Money(), requests: 0 }));
    s.gross.add(gross);
    if (discount !== undefined) s.discount.add(discount);
    s.net.add(net);
    s.requests += 1;
  }

  /** The interned `provider\0model` key (no string built per record). */
  #modelKey(provider: string, model: string): string {
    let keys = this.#modelKeys.get(provider);
    if (!keys) this.#modelKeys.set(provider, (keys = new Map()));
    let mk = keys.get(model);
    if (mk === undefined) keys.set(model, (mk = `${provider}\u0000${model}`));
    return mk;
  }

  #dropRollupsBefore(beforeMillis: number): number {
    let rows = 0;
    for (const [ps, p] of this.#periods) {
      if (Date.parse(ps) >= beforeMillis) continue;
      for (const head of p.users.values()) for (const u of planRows(head)) rows += 1 + u.modelRows().length;
      rows += p.models.size + p.providers.size;
      this.#periods.delete(ps);
    }
    return rows;
  }

  #iso(periodStart: string): string {
    // Every record of a group almost always carries the same string: compared before the map lookup.
    if (periodStart === this.#lastIsoIn) return this.#lastIsoOut;
    let iso = this.#isoCache.get(periodStart);
    if (iso === undefined) {
      if (this.#isoCache.size > 256) this.#isoCache.clear();
      iso = isoOf(periodStart);
      this.#isoCache.set(periodStart, iso);
    }
    this.#lastIsoIn = periodStart;
    this.#lastIsoOut = iso;
    return iso;
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
      if (!isPrevalidated(records)) records.forEach(validateRecord);
    } catch (err) {
      return Promise.reject(err);
    }
    if (records.length === 0) return Promise.resolve({ committed: [], duplicates: [], rollups: [], outcomes: [] });
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, discounts: options.discounts ?? this.#discounts, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Commits several callers' records in one group (one journal entry, one fdatasync), each caller with its own
   * result, as if each had called `commit` in the same turn. Lets a GroupCommitter hand its batch over without
   * joining the callers' records and splitting the result again. Arrays not marked prevalidated are validated.
   * Undefined (nothing done) when volume discounts apply: they are decided in call order across the whole batch,
   * which needs the joined records. `onDurable[k]`, if set, is called synchronously as soon as caller k's records
   * are durable (after the journal write and fdatasync, before the totals are applied and the results built);
   * never for a caller that is rejected.
   */
  commitEach(
    callers: readonly LedgerRecord[][],
    options: CommitOptions = {},
    onDurable?: readonly ((() => void) | undefined)[],
  ): Promise<CommitResult>[] | undefined {
    const discounts = options.discounts ?? this.#discounts;
    if (discounts !== undefined) return undefined;
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
        if (!isPrevalidated(records)) records.forEach(validateRecord);
      } catch (err) {
        out.push(Promise.reject(err));
        continue;
      }
      if (records.length === 0) {
        out.push(Promise.resolve({ committed: [], duplicates: [], rollups: [], outcomes: [] }));
        continue;
      }
      const durable = onDurable?.[k];
      out.push(new Promise((resolve, reject) => this.#queue.push({ records, discounts, onDurable: durable, resolve, reject })));
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
        if (this.#queue.length > 0) await this.#commitGroup(this.#queue.splice(0));
        const job = this.#jobs.shift();
        if (job) await job();
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

  async #commitGroup(group: Waiter[]): Promise<void> {
    const down = this.#unavailable();
    if (down && this.#broken !== undefined) {
      for (const w of group) w.reject(down);
      return;
    }
    const now = this.#clock.now().getTime();
    this.#expire(now);
    // New keys go into today's bucket at once (later records of the group see them); undone if the write fails.
    const today = this.#bucket(Math.floor(now / DAY_MILLIS));
    const pendingSpend = new Map<string, Money>();
    const prepared: Prepared[] = [];
    for (const w of group) {
      try {
        prepared.push(this.#prepare(w, today, pendingSpend));
      } catch (err) {
        w.reject(err instanceof LedgerError ? err : new LedgerError(`ledger commit failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
    }
    let fresh = 0;
    for (const p of prepared) fresh += p.fresh.length;
    if (fresh > 0) {
      const enc = new CommitEncoder(fresh);
      for (const p of prepared) {
        const recs = p.waiter.records;
        p.fresh.forEach((i, k) => enc.add(recs[i], this.#iso(recs[i].periodStart), p.discounts[k]?.toFixed(), p.ids, i * ID_WORDS));
      }
      try {
        await this.#append(enc.finish(now), now, fresh);
      } catch (err) {
        for (const p of prepared) {
          for (const i of p.fresh) today.delete(p.waiter.records[i].traceId, p.waiter.records[i].spanId);
          p.waiter.reject(err);
        }
        return;
      }
      this.#durable(prepared);
      const gross = this.#scratch;
      for (const p of prepared) {
        const recs = p.waiter.records;
        p.fresh.forEach((i, k) => {
          const r = recs[i];
          const u = r.usage;
          const discount = p.discounts[k];
          gross.set(r.totalCostUsd);
          const net = discount === undefined ? gross : Money.of(new Exact(r.totalCostUsd).minus(discount).toFixed());
          this.#apply(
            this.#iso(r.periodStart), r.userId, r.plan, r.provider, r.model,
            u.input, u.cache_read, u.cache_write, u.output, u.reasoning, u.cache_write_1h ?? 0,
            r.priced, r.estimated, gross, discount === undefined ? undefined : Money.of(discount.toFixed()), net,
          );
        });
      }
    }
    if (fresh === 0) this.#durable(prepared); // only duplicates: durable since their first commit
    for (const p of prepared) p.waiter.resolve(this.#result(p));
    if (this.#bytesSinceSnapshot >= this.#snapshotEveryBytes && !this.#snapshotting) this.#startSnapshot();
  }

  /**
   * Tells each caller its records are durable (the exporter acknowledges then, in this same turn: nothing can
   * read the totals before they are applied below). A throwing callback does not stop the group.
   */
  #durable(prepared: Prepared[]): void {
    for (const p of prepared) {
      const cb = p.waiter.onDurable;
      if (cb === undefined) continue;
      try {
        cb();
      } catch {
        // The caller's own problem; its promise still resolves with the result.
      }
    }
  }

  /** Decides committed/duplicate and the volume discounts for one caller's records, without changing the state. */
  #prepare(w: Waiter, today: DedupKeys, pendingSpend: Map<string, Money>): Prepared {
    const recs = w.records;
    const outcomes: CommitOutcome[] = new Array<CommitOutcome>(recs.length).fill('duplicate');
    const fresh: number[] = [];
    // Each record's id words, read once for every day's bucket and for the journal entry.
    const ids = new Uint32Array(recs.length * ID_WORDS);
    for (let i = 0; i < recs.length; i++) {
      const at = i * ID_WORDS;
      readIdWords(recs[i].traceId, recs[i].spanId, ids, at);
      if (this.#seenElsewhere(ids, at, today) || !today.addWords(ids, at)) continue;
      fresh.push(i);
      outcomes[i] = 'committed';
    }
    try {
      return this.#discount(w, fresh, outcomes, pendingSpend, ids);
    } catch (err) {
      for (const i of fresh) today.delete(recs[i].traceId, recs[i].spanId);
      throw err;
    }
  }

  /** The volume discounts of one caller's new records (none without a discount function). */
  #discount(w: Waiter, fresh: number[], outcomes: CommitOutcome[], pendingSpend: Map<string, Money>, ids: Uint32Array): Prepared {
    const recs = w.records;
    const discounts: (Exact | undefined)[] = new Array<Exact | undefined>(fresh.length).fill(undefined);
    const nets: Prepared['nets'] = new Map();
    const fn = w.discounts;
    const spend = new Map<string, Money>();
    if (fn) {
      // In call order, against the provider's gross spend earlier in the period (as SqlLedger).
      const order = fresh.map((_, k) => k).sort((a, b) => {
        const x = recs[fresh[a]];
        const y = recs[fresh[b]];
        return x.endTimeMillis - y.endTimeMillis || (x.traceId + x.spanId < y.traceId + y.spanId ? -1 : 1);
      });
      for (const k of order) {
        const r = recs[fresh[k]];
        if (!r.priced) continue;
        const ps = this.#iso(r.periodStart);
        const sk = `${ps}\u0000${r.provider}`;
        const prior = spend.get(sk) ?? pendingSpend.get(sk) ?? this.#periods.get(ps)?.providers.get(r.provider)?.gross ?? new Money();
        const gross = new Exact(r.totalCostUsd);
        const raw = fn(r.provider, new Decimal(prior.toFixed()), new Decimal(gross.toFixed()));
        const discount = new Exact(raw.toFixed());
        if (!discount.isFinite() || discount.isNegative() || discount.gt(gross)) {
          throw new LedgerError(`volume discount for ${r.provider} must be between 0 and ${gross.toFixed()} USD, got ${raw.toFixed()}`);
        }
        const after = prior.clone();
        after.addString(r.totalCostUsd);
        spend.set(sk, after);
        if (discount.isZero()) continue;
        discounts[k] = discount;
        const perType = allocateDiscount(
          Object.fromEntries(TOKEN_TYPES.map((t) => [t, new Decimal(r.costUsd[t])])) as Record<TokenType, Decimal>,
          new Decimal(discount.toFixed()),
        );
        const costUsd = {} as Record<TokenType, Exact>;
        for (const t of TOKEN_TYPES) costUsd[t] = new Exact(r.costUsd[t]).minus(perType[t].toFixed());
        nets.set(fresh[k], { costUsd, total: gross.minus(discount), gross, discount });
      }
    }
    // Only now (nothing threw) does this caller's spend count for the callers after it in the group.
    for (const [k, v] of spend) pendingSpend.set(k, v);
    return { waiter: w, outcomes, fresh, discounts, nets, ids };
  }

  #result(p: Prepared): CommitResult {
    const recs = p.waiter.records;
    const committed: LedgerRecord[] = [];
    const duplicates: LedgerRecord[] = [];
    for (let i = 0; i < recs.length; i++) {
      if (p.outcomes[i] === 'committed') {
        const net = p.nets.get(i);
        committed.push(net ? withNetCosts(recs[i], net) : recs[i]);
      } else duplicates.push(recs[i]);
    }
    // The current totals of every (period, user, plan) the records touch, sorted as SqlLedger returns them.
    const touched: UserRow[] = [];
    const touchedPs: string[] = [];
    const seen = new Set<UserRow>();
    for (const r of recs) {
      const ps = this.#iso(r.periodStart);
      let u = this.#periods.get(ps)?.users.get(r.userId);
      while (u !== undefined && u.plan !== r.plan) u = u.next;
      if (u && !seen.has(u)) {
        seen.add(u);
        touched.push(u);
        touchedPs.push(ps);
      }
    }
    const idx = touched.map((_, k) => k);
    idx.sort((a, b) => compareStrings(touchedPs[a], touchedPs[b]) || compareStrings(touched[a].userId, touched[b].userId) || compareStrings(touched[a].plan, touched[b].plan));
    return { committed, duplicates, rollups: idx.map((k) => rollupOf(touchedPs[k], touched[k])), outcomes: p.outcomes };
  }

  /** Appends one entry to the current segment and makes it durable; on failure nothing of it remains. */
  async #append(payload: Buffer[], receivedAtMillis: number, records: number): Promise<void> {
    const day = Math.floor(receivedAtMillis / DAY_MILLIS);
    let cur = this.#current;
    if (cur && (cur.bytes >= this.#segmentMaxBytes || (cur.records > 0 && cur.day !== day))) {
      this.#seal();
      cur = undefined;
    }
    if (!cur || this.#fd === undefined) cur = this.#openSegment(day);
    const fd = this.#fd!;
    const buf = frameEntry(payload);
    const at = cur.bytes;
    try {
      let done = 0;
      while (done < buf.length) done += await promisify<number>((cb) => write(fd, buf, done, buf.length - done, at + done, cb));
      await promisify<void>((cb) => fdatasync(fd, cb));
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

  #openSegment(day: number): SegmentInfo {
    const seq = this.#nextSeq++;
    const file = join(this.dir, segmentName(seq));
    try {
      this.#fd = openSync(file, 'wx');
      fsyncDirectory(this.dir); // the new file's name must survive a crash too
    } catch (err) {
      throw new LedgerUnavailableError(`ledger unavailable (commit): cannot create ${file}: ${(err as Error).message}`, { cause: err });
    }
    const info: SegmentInfo = { seq, records: 0, bytes: 0, maxReceivedMillis: 0, day };
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
    const parts = this.#serialise(covers);
    this.#bytesSinceSnapshot = 0;
    const name = snapshotName(covers);
    const p = writeFileAtomically(this.dir, name, parts)
      .then(() => {
        this.#snapshotSeq = covers;
        for (const n of readdirSync(this.dir)) {
          const s = parseSnapshotName(n);
          if (s !== undefined && s < covers) unlinkSync(join(this.dir, n));
        }
      })
      .catch(() => {
        // Not fatal: the journal still holds everything; the next checkpoint tries again.
        this.#bytesSinceSnapshot = this.#snapshotEveryBytes;
      })
      .finally(() => {
        this.#snapshotting = undefined;
      });
    this.#snapshotting = p;
    return p;
  }

  #serialise(covers: number): Buffer[] {
    const segments = this.#segments.filter((s) => s.seq < covers).map((s): SnapshotJson['segments'][number] => [s.seq, s.records, s.bytes, s.maxReceivedMillis]);
    const periods: SnapshotJson['periods'] = [];
    for (const [ps, p] of this.#periods) {
      const users: SnapshotUser[] = [];
      for (const head of p.users.values()) {
        for (const u of planRows(head)) users.push([u.userId, u.plan, u.tokens(), u.requests, u.toFixed(), u.modelRows().map(modelJson)]);
      }
      const providers: SnapshotJson['periods'][number][3] = [...p.providers.values()].map((s) => [s.provider, s.gross.toFixed(), s.discount.toFixed(), s.net.toFixed(), s.requests]);
      periods.push([ps, users, [...p.models.values()].map(modelJson), providers]);
    }
    const json = JSON.stringify({ version: 1, covers, segments, periods } satisfies SnapshotJson);
    const binary: Buffer[] = [];
    for (const [day, set] of this.#buckets) {
      const head = Buffer.allocUnsafe(12);
      head.writeDoubleLE(day, 0);
      head.writeUInt32LE(set.size, 8);
      binary.push(head, Buffer.from(set.toBuffer())); // a copy: commits go on while the snapshot is written
    }
    return encodeSnapshot(json, binary);
  }

  // ---- queries ----

  async ping(): Promise<void> {
    const down = this.#unavailable();
    if (down) throw down;
  }

  #query(periodStart: Date | string): PeriodState | undefined {
    const down = this.#unavailable();
    if (down) throw down;
    return this.#periods.get(isoOf(periodStart));
  }

  async loadPeriodRollups(periodStart: Date | string, options: LoadRollupsOptions = {}): Promise<PeriodRollup[]> {
    const p = this.#query(periodStart);
    if (!p) return [];
    const ps = isoOf(periodStart);
    const rows: UserRow[] = [];
    for (const head of p.users.values()) for (let u: UserRow | undefined = head; u !== undefined; u = u.next) rows.push(u);
    rows.sort((a, b) => compareStrings(a.userId, b.userId) || compareStrings(a.plan, b.plan));
    if (!options.unpriced) return rows.map((u) => rollupOf(ps, u));
    return rows.map((u) => {
      let unpricedRequests = 0;
      for (let m = u.models; m !== undefined; m = m.next) unpricedRequests += m.unpriced;
      return unpricedRequests > 0 ? { ...rollupOf(ps, u), unpricedRequests } : rollupOf(ps, u);
    });
  }

  async userModelUsage(userId: string, periodStart: Date | string): Promise<ModelUsage[]> {
    const head = this.#query(periodStart)?.users.get(userId);
    if (!head) return [];
    const out: ModelUsage[] = [];
    for (const u of planRows(head).sort((a, b) => compareStrings(a.plan, b.plan))) {
      const rows = u.modelRows().sort((a, b) => compareStrings(a.provider, b.provider) || compareStrings(a.model, b.model));
      for (const m of rows) out.push({ ...modelUsageOf(m), userId, plan: u.plan });
    }
    return out;
  }

  async userPeriodUsage(userId: string, periodStart: Date | string): Promise<UserPeriodUsage> {
    const ps = isoOf(periodStart);
    const rows = planRows(this.#query(ps)?.users.get(userId)).sort((a, b) => compareStrings(a.plan, b.plan));
    const plans = rows.map((u) => rollupOf(ps, u));
    const cacheWrite1hTokens = rows.reduce((s, u) => s + u.t5, 0);
    const byModel = await this.userModelUsage(userId, ps);
    return { userId, periodStart: ps, ...totalsOf(plans), cacheWrite1hTokens, plans, byModel };
  }

  async periodModelUsage(periodStart: Date | string): Promise<ModelUsage[]> {
    const p = this.#query(periodStart);
    if (!p) return [];
    return [...p.models.values()].sort((a, b) => compareStrings(a.provider, b.provider) || compareStrings(a.model, b.model)).map(modelUsageOf);
  }

  async providerPeriodSpend(periodStart: Date | string): Promise<ProviderSpend[]> {
    const p = this.#query(periodStart);
    if (!p) return [];
    return [...p.providers.values()]
      .sort((a, b) => compareStrings(a.provider, b.provider))
      .map((s) => ({ provider: s.provider, grossUsd: s.gross.toFixed(), discountUsd: s.discount.toFixed(), netUsd: s.net.toFixed(), requests: s.requests }));
  }

  async periodSummary(periodStart: Date | string): Promise<PeriodSummary> {
    const ps = isoOf(periodStart);
    const [byModel, byProvider] = await Promise.all([this.periodModelUsage(ps), this.providerPeriodSpend(ps)]);
    return { periodStart: ps, ...totalsOf(byModel), byModel, byProvider };
  }

  /**
   * The segments as they are now (the current one up to its committed bytes), read one at a time: commits go on
   * meanwhile into later bytes, and a segment pruned before its turn is skipped (its calls are gone).
   */
  scanCalls(filter: CallFilter = {}): AsyncIterable<LedgerCall> {
    const f = normaliseFilter(filter);
    const down = this.#unavailable();
    if (down) throw down;
    return scanJournalSegments(this.dir, this.#segments.map((s) => ({ seq: s.seq, bytes: s.bytes })), f);
  }

  /** The billing periods the ledger holds totals for (ISO instants), oldest first (`tokenmeter ledger export`). */
  periodStarts(): string[] {
    const down = this.#unavailable();
    if (down) throw down;
    return [...this.#periods.keys()].sort();
  }

  // ---- retention ----

  async prune(options: PruneOptions): Promise<PruneResult> {
    const { olderThan, before } = pruneArguments(options, this.#clock, this.dedupWindowMillis);
    const down = this.#unavailable();
    if (down) throw down;
    return this.#exclusive(async () => {
      const cut = olderThan.getTime();
      const cur = this.#current;
      const old = (s: SegmentInfo) => s.maxReceivedMillis < cut && (s !== cur || s.records > 0);
      // A segment is deleted only once a snapshot holds its totals (and the current one is sealed first).
      if (this.#segments.some((s) => old(s) && (s === cur || s.seq >= this.#snapshotSeq))) {
        await this.#snapshotting;
        await this.#startSnapshot();
        if (this.#snapshotting) await this.#snapshotting;
      }
      let callsDeleted = 0;
      const keep: SegmentInfo[] = [];
      for (const s of this.#segments) {
        if (s !== this.#current && s.seq < this.#snapshotSeq && s.maxReceivedMillis < cut) {
          unlinkSync(join(this.dir, segmentName(s.seq)));
          callsDeleted += s.records;
        } else keep.push(s);
      }
      this.#segments = keep;
      // Dedup keys of whole days before the cut are gone with their calls (the cut is outside the window).
      let dropped = false;
      for (const day of this.#buckets.keys()) {
        if ((day + 1) * DAY_MILLIS <= cut) {
          this.#buckets.delete(day);
          dropped = true;
        }
      }
      if (dropped) this.#bucketList = [...this.#buckets.entries()].sort((a, b) => b[0] - a[0]).map((e) => e[1]);
      let rollupRowsDeleted = 0;
      if (before) {
        const now = this.#clock.now().getTime();
        await this.#append(encodePrune(now, before.getTime()), now, 0);
        rollupRowsDeleted = this.#dropRollupsBefore(before.getTime());
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

type SnapshotModel = [provider: string, model: string, tokens: Tokens, requests: number, unpriced: number, estimated: number, cost: string];
type SnapshotUser = [userId: string, plan: string, tokens: Tokens, requests: number, cost: string, models: SnapshotModel[]];
interface SnapshotJson {
  version: 1;
  covers: number;
  segments: [seq: number, records: number, bytes: number, maxReceivedMillis: number][];
  periods: [ps: string, users: SnapshotUser[], models: SnapshotModel[], providers: [provider: string, gross: string, discount: string, net: string, requests: number][]][];
}

const modelJson = (m: ModelRow): SnapshotModel => [m.provider, m.model, m.tokens(), m.requests, m.unpriced, m.estimated, m.toFixed()];

function modelRowOf([provider, model, tokens, requests, unpriced, estimated, cost]: SnapshotModel): ModelRow {
  const r = new ModelRow(provider, model);
  r.setTokens(tokens);
  r.requests = requests;
  r.unpriced = unpriced;
  r.estimated = estimated;
  r.addString(cost);
  return r;
}

function addModel(m: ModelRow, priced: boolean, estimated: boolean): void {
  if (!priced) m.unpriced += 1;
  if (estimated) m.estimated += 1;
}

function rollupOf(ps: string, u: UserRow): PeriodRollup {
  return { periodStart: ps, userId: u.userId, plan: u.plan, tokens: u.counts(), requests: u.requests, costUsd: u.toFixed() };
}

function modelUsageOf(m: ModelRow): ModelUsage {
  const tokens = m.counts();
  return {
    provider: m.provider,
    model: m.model,
    tokens,
    cacheWrite1hTokens: m.t5,
    totalTokens: totalTokens(tokens),
    requests: m.requests,
    unpricedRequests: m.unpriced,
    estimatedRequests: m.estimated,
    costUsd: m.toFixed(),
  };
}

function totalsOf(rows: readonly { tokens: TokenCounts; requests: number; costUsd: string }[]): { tokens: TokenCounts; totalTokens: number; requests: number; costUsd: string } {
  const tokens: TokenCounts = { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 };
  let cost = ZERO;
  let requests = 0;
  for (const r of rows) {
    for (const t of TOKEN_TYPES) tokens[t] += r.tokens[t];
    requests += r.requests;
    cost = cost.plus(r.costUsd);
  }
  return { tokens, totalTokens: totalTokens(tokens), requests, costUsd: cost.toFixed() };
}
