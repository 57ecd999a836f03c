/**
 * The journal ledger's commit decisions, without touching a file: which records are new (dedup keys), the
 * volume discounts in call order, and each caller's result once the group is durable and applied.
 */
import { Decimal } from 'decimal.js';
import type { TokenType } from '../contract/names.js';
import { ExactDecimal } from '../pricing/index.js';
import { readIdWords, type DedupKeys } from './dedup-keys.js';
import { LedgerError } from './errors.js';
import { netCostsOf, withNetCosts, type DiscountFunction } from './ledger-interface.js';
import { compareStrings, rollupOf, type JournalState, type UserRow } from './journal-state.js';
import { LimbSum } from '../money/index.js';
import type { CommitOutcome, CommitResult, LedgerRecord, PeriodRollup, TouchedRollups } from './types.js';

const Exact = ExactDecimal;
type Exact = ExactDecimal;

/** Words per record id in `Prepared.ids`: trace id 4, span id 2 (see readIdWords). */
export const ID_WORDS = 6;

export interface Waiter {
  records: LedgerRecord[];
  discounts: DiscountFunction | undefined;
  /** CommitOptions.liveTotals: the result carries the touched rows live (`touched`). */
  live: boolean;
  /** Called synchronously once the caller's records are durable (before the totals are applied), if set. */
  onDurable?: (() => void) | undefined;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

export interface Prepared {
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
  /** The rows the caller's new records changed, by period (filled as they are applied; only for a `live` waiter). */
  touched: TouchedRollups[] | undefined;
}

/** Decides committed/duplicate and the volume discounts for one caller's records, without changing the state. */
export function prepareCommit(state: JournalState, w: Waiter, today: DedupKeys, pendingSpend: Map<string, LimbSum>): Prepared {
  const recs = w.records;
  const outcomes: CommitOutcome[] = new Array<CommitOutcome>(recs.length).fill('duplicate');
  const fresh: number[] = [];
  // Each record's id words, read once for every day's bucket and for the journal entry.
  const ids = new Uint32Array(recs.length * ID_WORDS);
  for (let i = 0; i < recs.length; i++) {
    const at = i * ID_WORDS;
    readIdWords(recs[i].traceId, recs[i].spanId, ids, at);
    if (state.seenElsewhere(ids, at, today) || !today.addWords(ids, at)) continue;
    fresh.push(i);
    outcomes[i] = 'committed';
  }
  try {
    return discountCommit(state, w, fresh, outcomes, pendingSpend, ids);
  } catch (err) {
    for (const i of fresh) today.delete(recs[i].traceId, recs[i].spanId);
    throw err;
  }
}

/** The volume discounts of one caller's new records (none without a discount function). */
function discountCommit(state: JournalState, w: Waiter, fresh: number[], outcomes: CommitOutcome[], pendingSpend: Map<string, LimbSum>, ids: Uint32Array): Prepared {
  const recs = w.records;
  const discounts: (Exact | undefined)[] = new Array<Exact | undefined>(fresh.length).fill(undefined);
  const nets: Prepared['nets'] = new Map();
  const fn = w.discounts;
  const spend = new Map<string, LimbSum>();
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
      const ps = state.iso(r.periodStart);
      const sk = `${ps}\u0000${r.provider}`;
      const prior = spend.get(sk) ?? pendingSpend.get(sk) ?? state.periods.get(ps)?.providers.get(r.provider)?.gross ?? new LimbSum();
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
      nets.set(fresh[k], netCostsOf(r, discount));
    }
  }
  // Only now (nothing threw) does this caller's spend count for the callers after it in the group.
  for (const [k, v] of spend) pendingSpend.set(k, v);
  return { waiter: w, outcomes, fresh, discounts, nets, ids, touched: w.live ? [] : undefined };
}

export function commitResult(state: JournalState, p: Prepared): CommitResult {
  const recs = p.waiter.records;
  let committed: LedgerRecord[];
  let duplicates: LedgerRecord[];
  if (p.fresh.length === recs.length && p.nets.size === 0) {
    // The usual request: every record new, none discounted.
    committed = recs.slice();
    duplicates = [];
  } else {
    committed = [];
    duplicates = [];
    for (let i = 0; i < recs.length; i++) {
      if (p.outcomes[i] === 'committed') {
        const net = p.nets.get(i);
        committed.push(net ? withNetCosts(recs[i], net) : recs[i]);
      } else duplicates.push(recs[i]);
    }
  }
  if (p.touched === undefined) return { committed, duplicates, rollups: rollupsOf(state, recs), outcomes: p.outcomes };
  // Live totals asked for: the rows as they are, and the sorted rollups only if someone reads them.
  let rollups: PeriodRollup[] | undefined;
  return {
    committed,
    duplicates,
    outcomes: p.outcomes,
    touched: p.touched,
    get rollups(): PeriodRollup[] {
      return (rollups ??= rollupsOf(state, recs));
    },
  };
}

/** The current totals of every (period, user, plan) the records touch, sorted as SqlLedger returns them. */
function rollupsOf(state: JournalState, recs: readonly LedgerRecord[]): PeriodRollup[] {
  const touched: UserRow[] = [];
  const touchedPs: string[] = [];
  const seen = new Set<UserRow>();
  for (const r of recs) {
    const ps = state.iso(r.periodStart);
    const u = state.userRow(ps, r.userId, r.plan);
    if (u && !seen.has(u)) {
      seen.add(u);
      touched.push(u);
      touchedPs.push(ps);
    }
  }
  const idx = touched.map((_, k) => k);
  idx.sort((a, b) => compareStrings(touchedPs[a], touchedPs[b]) || compareStrings(touched[a].userId, touched[b].userId) || compareStrings(touched[a].plan, touched[b].plan));
  return idx.map((k) => rollupOf(touchedPs[k], touched[k]));
}
