/**
 * Group commit: many concurrent requests, one transaction. Each OTLP request is acknowledged only after its
 * usage is committed; batching the records of concurrent requests into one transaction (and one WAL flush)
 * keeps that fast.
 */
import type { CommitOptions, Ledger } from './ledger-interface.js';
import { isPrevalidated, markPrevalidated, validateRecord, type RecordCheck } from './record-validation.js';
import { LedgerError, LedgerUnavailableError } from './errors.js';
import type { CommitResult, LedgerRecord, PeriodRollup } from './types.js';

export interface GroupCommitterOptions {
  /** A batch is committed as soon as it holds this many records (default 2000). */
  maxBatchRecords?: number;
  /**
   * How long the first record of a batch waits for company before the batch is committed (default 2 ms; 0 for
   * the embedded journal ledger, whose commit is a file append: waiting would only add latency, and callers that
   * arrive while a commit is in flight are batched anyway). 0 = the next turn of the event loop.
   */
  maxWaitMillis?: number;
  /** Passed to every `ledger.commit`. */
  commitOptions?: CommitOptions;
}

/** A ledger that commits several callers' records as one group, each with its own result. */
interface CallerGroupLedger {
  commitEach(callers: readonly LedgerRecord[][], options?: CommitOptions, onDurable?: readonly ((() => void) | undefined)[]): Promise<CommitResult>[] | undefined;
}

/** Each caller's records were validated in commit(): the ledger need not check them again. */
function markAndTrue(w: Waiter): boolean {
  markPrevalidated(w.records);
  return true;
}

function recordsOf(w: Waiter): LedgerRecord[] {
  return w.records;
}

function onDurableOf(w: Waiter): (() => void) | undefined {
  return w.onDurable;
}

interface Waiter {
  records: LedgerRecord[];
  onDurable: (() => void) | undefined;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitterStats {
  /** Transactions committed. */
  batches: number;
  /** Records submitted to committed transactions. */
  records: number;
  /** Failed transactions (every caller of the batch was rejected). */
  failedBatches: number;
}

/**
 * Collects records from concurrent callers and commits them in one transaction at a time. Each caller's
 * promise resolves with its own records' outcome, or every caller of a failed transaction is rejected with
 * the transaction's error (nothing is partially acknowledged). A caller's records are never split over two
 * transactions.
 */
export class GroupCommitter {
  readonly #ledger: Ledger;
  readonly #maxBatchRecords: number;
  readonly #maxWaitMillis: number;
  readonly #commitOptions: CommitOptions | undefined;
  #queue: Waiter[] = [];
  #queuedRecords = 0;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #inFlight: Promise<void> | undefined;
  #closed = false;
  readonly stats: GroupCommitterStats = { batches: 0, records: 0, failedBatches: 0 };

  constructor(ledger: Ledger, options: GroupCommitterOptions = {}) {
    this.#ledger = ledger;
    this.#maxBatchRecords = options.maxBatchRecords ?? 2000;
    this.#maxWaitMillis = options.maxWaitMillis ?? (ledger.kind === 'embedded' ? 0 : 2);
    this.#commitOptions = options.commitOptions;
    if (!Number.isSafeInteger(this.#maxBatchRecords) || this.#maxBatchRecords < 1) throw new RangeError('maxBatchRecords must be a positive integer');
    if (!Number.isFinite(this.#maxWaitMillis) || this.#maxWaitMillis < 0) throw new RangeError('maxWaitMillis must be a non-negative number');
  }

  /** Number of records waiting for the next transaction. */
  get pending(): number {
    return this.#queuedRecords;
  }

  /**
   * Commits `records` together with other callers' records. Invalid records reject this caller alone (before
   * batching) with a LedgerError; a failed transaction rejects every caller in it.
   */
  commit(records: LedgerRecord[]): Promise<CommitResult> {
    return this.#enqueue(records, 'full');
  }

  /**
   * `commit` for records built by the exporter's pipeline, which constructs ids, periods and prices itself: a
   * structural check (`validateRecord` in its `trusted` mode) instead of re-parsing every id and money string and re-adding the costs.
   * `onDurable`: called synchronously once the records are durable and in the ledger's totals, before the
   * result is built (the exporter acknowledges the request then); only ledgers that group callers themselves (the journal
   * ledger) call it, and never for a failed commit. The promise resolves with the result as `commit`'s does.
   */
  commitTrusted(records: LedgerRecord[], onDurable?: () => void): Promise<CommitResult> {
    return this.#enqueue(records, 'trusted', onDurable);
  }

  #enqueue(records: LedgerRecord[], check: RecordCheck, onDurable?: () => void): Promise<CommitResult> {
    if (this.#closed) return Promise.reject(new LedgerUnavailableError('ledger is closing'));
    try {
      if (!Array.isArray(records)) throw new LedgerError('commit: records must be an array');
      // The exporter's pipeline has already run the trusted check on each record (and rejected the bad ones alone).
      const checked = check === 'trusted' && isPrevalidated(records);
      if (!checked) for (let i = 0; i < records.length; i++) validateRecord(records[i], i, check);
    } catch (err) {
      return Promise.reject(err);
    }
    if (records.length === 0) return Promise.resolve({ committed: [], duplicates: [], rollups: [], outcomes: [] });
    return new Promise<CommitResult>((resolve, reject) => {
      this.#queue.push({ records, onDurable, resolve, reject });
      this.#queuedRecords += records.length;
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight) return; // the loop picks the queue up when the current transaction ends
    if (this.#queuedRecords >= this.#maxBatchRecords) {
      this.#clearTimer();
      this.#start();
    } else if (!this.#timer) {
      const fire = () => {
        this.#timer = undefined;
        if (!this.#inFlight) this.#start();
      };
      // setTimeout(0) waits about 1 ms; setImmediate runs after the I/O callbacks already due (other requests).
      this.#timer = this.#maxWaitMillis === 0 ? setImmediate(fire) : setTimeout(fire, this.#maxWaitMillis);
    }
  }

  #clearTimer(): void {
    const t = this.#timer;
    if (t === undefined) return;
    if (this.#maxWaitMillis === 0) clearImmediate(t as NodeJS.Immediate);
    else clearTimeout(t as NodeJS.Timeout);
    this.#timer = undefined;
  }

  #start(): void {
    this.#inFlight = this.#loop().finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  /** Commits batches back to back while callers keep arriving (they queued during the last transaction). */
  async #loop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch: Waiter[] = [];
      let n = 0;
      while (this.#queue.length > 0 && (batch.length === 0 || n + this.#queue[0].records.length <= this.#maxBatchRecords)) {
        const w = this.#queue.shift()!;
        batch.push(w);
        n += w.records.length;
      }
      this.#queuedRecords -= n;
      await this.#commitBatch(batch, n);
    }
  }

  async #commitBatch(batch: Waiter[], n: number): Promise<void> {
    const each = (this.#ledger as Partial<CallerGroupLedger>).commitEach;
    if (typeof each === 'function' && batch.every(markAndTrue)) {
      const results = each.call(this.#ledger, batch.map(recordsOf), this.#commitOptions, batch.map(onDurableOf));
      if (results) return this.#settleEach(results, batch, n);
    }
    const all = batch.length === 1 ? batch[0].records.slice() : batch.flatMap((w) => w.records);
    markPrevalidated(all); // each caller's records were validated in commit()
    let result: CommitResult;
    try {
      result = await this.#ledger.commit(all, this.#commitOptions);
      if (!result.outcomes || result.outcomes.length !== all.length) throw new LedgerError('ledger commit returned no per-record outcomes');
    } catch (err) {
      this.stats.failedBatches += 1;
      for (const w of batch) w.reject(err);
      return;
    }
    this.stats.batches += 1;
    this.stats.records += n;
    const outcomes = result.outcomes;
    if (batch.length === 1) {
      // One caller: the transaction's result is its result (its rollups are those of its own records).
      if (result.touched !== undefined) batch[0].resolve(result);
      else batch[0].resolve({ committed: result.committed, duplicates: result.duplicates, rollups: result.rollups, outcomes });
      return;
    }
    // Each caller gets the rollups of its own (period, user, plan) keys, in the ledger's order. Looked up through
    // nested maps of the strings the records already hold (no key string built per record).
    const index = new Map<string, Map<string, Map<string, PeriodRollup>>>();
    for (const r of result.rollups) {
      let users = index.get(r.periodStart);
      if (!users) index.set(r.periodStart, (users = new Map()));
      let plans = users.get(r.userId);
      if (!plans) users.set(r.userId, (plans = new Map()));
      plans.set(r.plan, r);
    }
    // Period starts as the ledger returns them (ISO), normalised once per distinct string rather than per record.
    const iso = new Map<string, string>();
    // committed[] is in input order among committed records: walk it alongside the outcomes.
    let c = 0;
    let offset = 0;
    for (const w of batch) {
      const committed: LedgerRecord[] = [];
      const duplicates: LedgerRecord[] = [];
      const touched = new Set<PeriodRollup>();
      const mine = outcomes.slice(offset, offset + w.records.length);
      for (let k = 0; k < mine.length; k++) {
        const rec = w.records[k];
        if (mine[k] === 'committed') committed.push(result.committed[c++]);
        else duplicates.push(rec);
        let ps = iso.get(rec.periodStart);
        if (ps === undefined) iso.set(rec.periodStart, (ps = new Date(rec.periodStart).toISOString()));
        const r = index.get(ps)?.get(rec.userId)?.get(rec.plan);
        if (r) touched.add(r);
      }
      offset += w.records.length;
      w.resolve({ committed, duplicates, rollups: result.rollups.filter((r) => touched.has(r)), outcomes: mine });
    }
  }

  /**
   * A ledger that groups callers itself (the journal ledger): the batch is handed over caller by caller, so no
   * joined array and no splitting of the result. Every caller of a failed write is rejected as before.
   */
  async #settleEach(pending: Promise<CommitResult>[], batch: Waiter[], n: number): Promise<void> {
    const results = await Promise.allSettled(pending);
    let failed = false;
    for (let k = 0; k < batch.length; k++) {
      const w = batch[k];
      const s = results[k];
      if (s.status === 'rejected') {
        failed = true;
        w.reject(s.reason);
      } else if (!s.value.outcomes || s.value.outcomes.length !== w.records.length) {
        failed = true;
        w.reject(new LedgerError('ledger commit returned no per-record outcomes'));
      } else w.resolve(s.value);
    }
    if (failed) this.stats.failedBatches += 1;
    else {
      this.stats.batches += 1;
      this.stats.records += n;
    }
  }

  /** Commits everything queued, then refuses new records. Does not close the ledger. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    while (this.#inFlight || this.#queue.length > 0) {
      if (!this.#inFlight) this.#start();
      await this.#inFlight;
    }
  }
}
