/**
 * The journal ledger's state in memory: per-period totals (user → plan → totals + per provider/model, provider
 * and model totals, provider spend) and the dedup keys by received day. Everything here is pure memory; the files
 * are the business of journal-ledger.ts (commit), journal-snapshot.ts and journal-format.ts.
 */
import { TOKEN_TYPES } from '../contract/names.js';
import { ExactDecimal } from '../pricing/index.js';
import { totalTokens } from '../usage/usage.js';
import { DedupKeys } from './dedup-keys.js';
import { LedgerError } from './errors.js';
import type { ModelUsage, TokenCounts } from './ledger-interface.js';
import { LimbSum } from '../money/index.js';
import type { LiveRollup, PeriodRollup } from './types.js';
import { callKey, type CallAdjustment, type CallCosts, type RepriceAudit } from './adjustments.js';

export const DAY_MILLIS = 24 * 60 * 60 * 1000;

/** Six token counters: the five buckets + the 1-hour part of cache_write (the snapshot's form). */
export type Tokens = [number, number, number, number, number, number];

/**
 * One total: its exact cost (the LimbSum it extends), token counters as fields (no array per row), requests. Rows
 * are the bulk of the ledger's heap (a few per active user), so they are plain classes, chained instead of a Map
 * per user.
 */
export class Row extends LimbSum {
  t0 = 0;
  t1 = 0;
  t2 = 0;
  t3 = 0;
  t4 = 0;
  t5 = 0;
  requests = 0;

  addTokens(t0: number, t1: number, t2: number, t3: number, t4: number, t5: number, net: LimbSum): void {
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

export class ModelRow extends Row {
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

export class UserRow extends Row implements LiveRollup {
  /** The last commit caller whose `touched` list holds this row (JournalState.nextTouchStamp). */
  touchStamp = 0;
  /** LiveRollup.readerSlot: the exporter metrics' own per-row state; never read here. */
  readerSlot: unknown = undefined;
  /** The user's usage per provider and model in this plan: the usage API's per-user breakdown. */
  models: ModelRow | undefined = undefined;
  /** The same user's row under another plan (usually none). */
  next: UserRow | undefined = undefined;
  /** The snapshot epoch that has already taken this row's value (read by the writer or frozen before a change). */
  seen = 0;

  constructor(
    readonly userId: string,
    readonly plan: string,
  ) {
    super();
  }

  tokenSum(): number {
    return this.t0 + this.t1 + this.t2 + this.t3 + this.t4;
  }

  costUsd(): string {
    return this.toFixed();
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

  /** The per-model row, if any (no row created). */
  modelRow(provider: string, model: string): ModelRow | undefined {
    let m = this.models;
    while (m !== undefined && (m.model !== model || m.provider !== provider)) m = m.next;
    return m;
  }

  modelRows(): ModelRow[] {
    const out: ModelRow[] = [];
    for (let m = this.models; m !== undefined; m = m.next) out.push(m);
    return out;
  }
}

/** Every plan's row of one user (the chain from `head`). */
export function planRows(head: UserRow | undefined): UserRow[] {
  const out: UserRow[] = [];
  for (let u = head; u !== undefined; u = u.next) out.push(u);
  return out;
}

export interface SpendRow {
  provider: string;
  gross: LimbSum;
  discount: LimbSum;
  net: LimbSum;
  requests: number;
}

export interface PeriodState {
  /** user → their rows (one per plan, chained). */
  users: Map<string, UserRow>;
  /** `provider\0model` → totals for everyone. */
  models: Map<string, ModelRow>;
  providers: Map<string, SpendRow>;
}

export interface SegmentInfo {
  seq: number;
  records: number;
  bytes: number;
  /** Latest received time of a call in the segment (0 when it holds none). */
  maxReceivedMillis: number;
  /** UTC day number of the received times it holds (segments roll at midnight so prune works by day). */
  day: number;
}

export type SnapshotModel = [provider: string, model: string, tokens: Tokens, requests: number, unpriced: number, estimated: number, cost: string];
export type SnapshotUser = [userId: string, plan: string, tokens: Tokens, requests: number, cost: string, models: SnapshotModel[]];

export const modelJson = (m: ModelRow): SnapshotModel => [m.provider, m.model, m.tokens(), m.requests, m.unpriced, m.estimated, m.toFixed()];
export const userJson = (u: UserRow): SnapshotUser => [u.userId, u.plan, u.tokens(), u.requests, u.toFixed(), u.modelRows().map(modelJson)];

/** The totals and dedup keys, with the operations commit, replay, snapshot load and retention share. */
export class JournalState {
  readonly periods = new Map<string, PeriodState>();
  /** Dedup keys (trace id + span id) by received UTC day. */
  readonly buckets = new Map<number, DedupKeys>();
  /** The same sets, newest day first (the order lookups try them). */
  bucketList: DedupKeys[] = [];
  readonly #isoCache = new Map<string, string>();
  #lastIsoIn: string | undefined = undefined;
  #lastIsoOut = '';
  /** `provider\0model` keys by provider and model: built once, so no string is concatenated per record. */
  readonly #modelKeys = new Map<string, Map<string, string>>();
  /** Reused for each record's gross cost while it is added to the totals. */
  readonly scratch = new LimbSum();
  /**
   * Replay's strings are slices of a whole journal entry (V8 keeps the entry alive as long as a slice lives), so
   * the names kept in the totals are copies, each made once; repeats also find the same string (its hash cached).
   */
  readonly names = new Map<string, string>();
  /**
   * A snapshot in progress is written a slice at a time while commits go on, from the state as it was when it
   * began (copy-on-write): a user row a commit is about to change before the writer has read it is frozen here
   * first (its value then, as the snapshot stores it). Rows created meanwhile are not reached by the writer: new
   * users are not in its list, a user's new plan or model row is put before the rows it took.
   */
  snapshotEpoch = 0;
  snapshotActive = false;
  readonly frozen = new Map<UserRow, SnapshotUser>();
  readonly intern = (s: string): string => {
    let v = this.names.get(s);
    if (v === undefined) {
      v = s.length >= 13 ? Buffer.from(s, 'utf8').toString('utf8') : s; // V8 copies shorter substrings anyway
      if (this.names.size >= 100_000) this.names.clear();
      this.names.set(v, v);
    }
    return v;
  };

  /** Applied re-pricings, oldest first (their audit records; issue 18). */
  audits: RepriceAudit[] = [];
  /** Calls whose cost a re-pricing replaced (trace id + span id → the audit and the costs now in force). */
  readonly adjusted = new Map<string, AdjustedCall>();

  /**
   * Applies a re-pricing's adjustments to the totals (costs only: tokens and requests stay): the user row, the
   * user's and everyone's per-model row (one unpriced request fewer for a call priced for the first time), the
   * provider's spend. With `check`, only checks that it can be applied (each call's old cost is the cost in force,
   * no total goes below zero) and changes nothing: journal-ledger.ts checks before it writes the entry.
   * Periods whose totals were pruned (`rollupsBefore`) have no rows to adjust; their calls are still adjusted.
   */
  applyAdjustments(audit: RepriceAudit, adjustments: readonly CallAdjustment[], check: boolean): void {
    const sums = new Map<LimbSum, ExactDecimal>();
    const unpriced = new Map<ModelRow, number>();
    const users = new Set<UserRow>();
    const shift = (sum: LimbSum, delta: ExactDecimal) => {
      if (!delta.isZero()) sums.set(sum, (sums.get(sum) ?? ZERO).plus(delta));
    };
    for (const a of adjustments) {
      const key = callKey(a.traceId, a.spanId);
      if (check) {
        const prior = this.adjusted.get(key);
        if (prior !== undefined && !sameCostsLoose(prior.costs, a.old)) {
          throw new LedgerError(`re-pricing: the call ${a.traceId}/${a.spanId} was re-priced meanwhile (audit ${prior.auditId}); compute the re-pricing again`);
        }
      }
      const ps = isoOf(a.periodStart);
      const p = this.periods.get(ps);
      if (p === undefined) continue;
      const net = new ExactDecimal(a.new.totalCostUsd).minus(a.old.totalCostUsd);
      const u = this.userRow(ps, a.userId, a.plan);
      if (u === undefined) continue;
      users.add(u);
      shift(u, net);
      const newlyPriced = !a.old.priced && a.new.priced ? 1 : 0;
      for (const m of [u.modelRow(a.provider, a.model), p.models.get(this.modelKey(a.provider, a.model))]) {
        if (m === undefined) continue;
        shift(m, net);
        if (newlyPriced) unpriced.set(m, (unpriced.get(m) ?? 0) + 1);
      }
      const s = p.providers.get(a.provider);
      if (s !== undefined) {
        shift(s.gross, new ExactDecimal(a.new.grossCostUsd).minus(a.old.grossCostUsd));
        shift(s.discount, new ExactDecimal(a.new.discountUsd).minus(a.old.discountUsd));
        shift(s.net, net);
      }
    }
    const values = new Map<LimbSum, string>();
    for (const [sum, delta] of sums) {
      const v = new ExactDecimal(sum.toFixed()).plus(delta);
      if (v.isNegative() && !v.isZero()) throw new LedgerError(`re-pricing would make a total negative (${v.toFixed()}); compute the re-pricing again`);
      values.set(sum, v.toFixed());
    }
    for (const [m, n] of unpriced) if (m.unpriced < n) throw new LedgerError('re-pricing: more newly priced calls than unpriced requests in the totals; compute the re-pricing again');
    if (check) return;
    for (const u of users) {
      if (this.snapshotActive && u.seen !== this.snapshotEpoch) {
        this.frozen.set(u, userJson(u));
        u.seen = this.snapshotEpoch;
      }
    }
    for (const [sum, v] of values) sum.set(v);
    for (const [m, n] of unpriced) m.unpriced -= n;
    for (const a of adjustments) this.adjusted.set(callKey(a.traceId, a.spanId), { auditId: audit.id, costs: a.new });
    this.audits.push(audit);
  }

  period(ps: string): PeriodState {
    let p = this.periods.get(ps);
    if (!p) this.periods.set(ps, (p = { users: new Map(), models: new Map(), providers: new Map() }));
    return p;
  }

  bucket(day: number): DedupKeys {
    let set = this.buckets.get(day);
    if (!set) {
      this.buckets.set(day, (set = new DedupKeys()));
      this.#sortBuckets();
    }
    return set;
  }

  #sortBuckets(): void {
    this.bucketList = [...this.buckets.entries()].sort((a, b) => b[0] - a[0]).map((e) => e[1]);
  }

  /** Whether the key whose words start at `at` in `w` is in another day's bucket (ids parsed once, not per day). */
  seenElsewhere(w: Uint32Array, at: number, except: DedupKeys): boolean {
    const list = this.bucketList;
    for (let k = 0; k < list.length; k++) if (list[k] !== except && list[k].hasWords(w, at)) return true;
    return false;
  }

  /** Forgets the dedup keys of every day that ends at or before `cutMillis`. */
  dropDaysBefore(cutMillis: number): void {
    let dropped = false;
    for (const day of this.buckets.keys()) {
      if ((day + 1) * DAY_MILLIS <= cutMillis) {
        this.buckets.delete(day);
        dropped = true;
      }
    }
    if (dropped) this.#sortBuckets();
  }

  #touchStamp = 0;

  /** A stamp no row carries yet, for one caller's `touched` list (increasing, never reused, never 0). */
  nextTouchStamp(): number {
    return ++this.#touchStamp;
  }

  /** Adds one committed call to the totals. `net` = gross - discount. Returns the user's row it changed. */
  apply(
    ps: string, userId: string, plan: string, provider: string, model: string,
    t0: number, t1: number, t2: number, t3: number, t4: number, t5: number,
    priced: boolean, estimated: boolean, gross: LimbSum, discount: LimbSum | undefined, net: LimbSum,
  ): UserRow {
    const p = this.period(ps);
    const head = p.users.get(userId);
    let u = head;
    while (u !== undefined && u.plan !== plan) u = u.next;
    if (u === undefined) {
      u = new UserRow(userId, plan);
      u.next = head;
      p.users.set(userId, u);
    } else if (this.snapshotActive && u.seen !== this.snapshotEpoch) {
      this.frozen.set(u, userJson(u));
      u.seen = this.snapshotEpoch;
    }
    u.addTokens(t0, t1, t2, t3, t4, t5, net);
    const um = u.model(provider, model);
    um.addTokens(t0, t1, t2, t3, t4, t5, net);
    addModel(um, priced, estimated);
    const mk = this.modelKey(provider, model);
    let m = p.models.get(mk);
    if (!m) p.models.set(mk, (m = new ModelRow(provider, model)));
    m.addTokens(t0, t1, t2, t3, t4, t5, net);
    addModel(m, priced, estimated);
    let s = p.providers.get(provider);
    if (!s) p.providers.set(provider, (s = { provider, gross: new LimbSum(), discount: new LimbSum(), net: new LimbSum(), requests: 0 }));
    s.gross.add(gross);
    if (discount !== undefined) s.discount.add(discount);
    s.net.add(net);
    s.requests += 1;
    return u;
  }

  /** The interned `provider\0model` key (no string built per record). */
  modelKey(provider: string, model: string): string {
    let keys = this.#modelKeys.get(provider);
    if (!keys) this.#modelKeys.set(provider, (keys = new Map()));
    let mk = keys.get(model);
    if (mk === undefined) keys.set(model, (mk = `${provider}\u0000${model}`));
    return mk;
  }

  /** Drops the totals of periods starting before `beforeMillis`; returns how many rows they had. */
  dropRollupsBefore(beforeMillis: number): number {
    let rows = 0;
    for (const [ps, p] of this.periods) {
      if (Date.parse(ps) >= beforeMillis) continue;
      for (const head of p.users.values()) for (const u of planRows(head)) rows += 1 + u.modelRows().length;
      rows += p.models.size + p.providers.size;
      this.periods.delete(ps);
    }
    return rows;
  }

  /** The user's row under `plan` in the period, if any. */
  userRow(ps: string, userId: string, plan: string): UserRow | undefined {
    let u = this.periods.get(ps)?.users.get(userId);
    while (u !== undefined && u.plan !== plan) u = u.next;
    return u;
  }

  iso(periodStart: string): string {
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
}

/** A call a re-pricing changed: the audit's id and the costs now in force. */
export interface AdjustedCall {
  auditId: string;
  costs: CallCosts;
}

/** Same price id and net total (the amounts a later re-pricing names as the old cost). */
function sameCostsLoose(a: CallCosts, b: CallCosts): boolean {
  return a.priced === b.priced && (a.priceId ?? null) === (b.priceId ?? null) && new ExactDecimal(a.totalCostUsd).eq(b.totalCostUsd);
}

export function addModel(m: ModelRow, priced: boolean, estimated: boolean): void {
  if (!priced) m.unpriced += 1;
  if (estimated) m.estimated += 1;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isoOf(periodStart: Date | string): string {
  const d = typeof periodStart === 'string' ? new Date(periodStart) : periodStart;
  if (!Number.isFinite(d.getTime())) throw new LedgerError(`invalid period start: ${String(periodStart)}`);
  return d.toISOString();
}

export function rollupOf(ps: string, u: UserRow): PeriodRollup {
  return { periodStart: ps, userId: u.userId, plan: u.plan, tokens: u.counts(), requests: u.requests, costUsd: u.toFixed() };
}

export function modelUsageOf(m: ModelRow): ModelUsage {
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

const ZERO = new ExactDecimal(0);

export function totalsOf(rows: readonly { tokens: TokenCounts; requests: number; costUsd: string }[]): { tokens: TokenCounts; totalTokens: number; requests: number; costUsd: string } {
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
