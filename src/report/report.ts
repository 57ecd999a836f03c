/**
 * Billing reports from the ledger: one period, broken down by user, plan, feature, model, provider or day. Every
 * line carries its tokens by type, requests and exact cost; the lines add up exactly to the total (exact decimal
 * sums, never floats). by user / plan / model / provider read the ledger's per-period rollups; by feature / day
 * need the per-call record (the ledger's `scanCalls`). Lines come out in a fixed order (sorted by their key) and
 * nothing in a report depends on when it was made, so a closed period's report is the same bytes tomorrow.
 */
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import type { LedgerRecord, PeriodRollup } from '../ledger/types.js';
import type { BillingPeriod } from '../plans/types.js';
import { ExactDecimal } from '../pricing/index.js';
import { ExactSum } from '../money/index.js';
import type { RepriceAudit } from '../ledger/adjustments.js';

export const REPORT_BREAKDOWNS = ['user', 'plan', 'feature', 'model', 'provider', 'day'] as const;
export type ReportBy = (typeof REPORT_BREAKDOWNS)[number];

/** Per-model usage as the ledgers return it (`Ledger.periodModelUsage` / `userModelUsage`). */
export interface ReportModelRow {
  provider: string;
  model: string;
  userId?: string;
  plan?: string;
  tokens: Record<TokenType, number>;
  requests: number;
  unpricedRequests?: number;
  estimatedRequests?: number;
  costUsd: string;
}

/** A committed call as a per-call scan yields it. */
export type ReportCall = Pick<LedgerRecord, 'userId' | 'plan' | 'feature' | 'provider' | 'model' | 'usage' | 'priced' | 'estimated' | 'totalCostUsd' | 'endTimeMillis' | 'periodStart'> & {
  receivedAtMillis?: number;
};

/** What a report reads: the ledger's rollup queries, and its per-call scan for by feature / day. */
export interface ReportLedger {
  loadPeriodRollups(periodStart: Date, options?: { unpriced?: boolean }): Promise<PeriodRollup[]>;
  periodModelUsage(periodStart: Date): Promise<ReportModelRow[]>;
  userModelUsage(userId: string, periodStart: Date): Promise<ReportModelRow[]>;
  scanCalls?(filter: { periodStart?: Date; userId?: string }): AsyncIterable<ReportCall>;
  /** The rollups one at a time in (user, plan) order (the real ledgers); without it `loadPeriodRollups` is read whole. */
  scanPeriodRollups?(periodStart: Date, options?: { userId?: string }): AsyncIterable<PeriodRollup>;
  /** The re-pricings that touched the period (issue 18); absent: a ledger that cannot be re-priced. */
  repriceAudits?(periodStart: Date): Promise<RepriceAudit[]>;
}

export interface ReportQuery {
  period: BillingPeriod;
  by: ReportBy;
  /** Only this user's usage. */
  user?: string;
  /** Time zone of the `day` breakdown (the billing calendar's; default UTC). */
  timeZone?: string;
  /** The period's re-pricings (`repriceAudits`): by user, each line says its part of them (`adjustmentUsd`). */
  audits?: readonly RepriceAudit[];
}

/** The key columns of each breakdown, in order. */
export const KEY_COLUMNS: Record<ReportBy, readonly string[]> = {
  user: ['user', 'plan'],
  plan: ['plan'],
  feature: ['feature'],
  model: ['provider', 'model'],
  provider: ['provider'],
  day: ['day'],
};

export interface ReportLine {
  /** Values of KEY_COLUMNS[by], in order. */
  key: string[];
  tokens: Record<TokenType, number>;
  requests: number;
  /** Requests with no price at the time: their tokens are counted, their cost is not in `costUsd` (unknown, not 0). */
  unpricedRequests: number;
  /** Exact decimal string: the cost of the priced requests (net of volume discounts). */
  costUsd: string;
  /** By user, in a re-priced period: how much of `costUsd` re-pricings added (negative: took off), exact. */
  adjustmentUsd?: string;
}

/** The feature of calls that carried none (the metric label's value too). */
export const NO_FEATURE_KEY = 'none';

class Acc {
  tokens: Record<TokenType, number> = { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 };
  requests = 0;
  unpriced = 0;
  cost = new ExactSum();

  add(tokens: Partial<Record<TokenType, number>>, requests: number, unpriced: number, costUsd: string): void {
    for (const t of TOKEN_TYPES) this.tokens[t] += tokens[t] ?? 0;
    this.requests += requests;
    this.unpriced += unpriced;
    this.cost.add(costUsd);
  }

  line(key: string[]): ReportLine {
    return { key, tokens: { ...this.tokens }, requests: this.requests, unpricedRequests: this.unpriced, costUsd: this.cost.toString() };
  }
}

/** Byte order of the keys (not the locale's): the same order on every machine, so the same bytes. */
function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function grouped(entries: Iterable<[string[], Acc]>): ReportLine[] {
  return [...entries].sort((x, y) => compareKeys(x[0], y[0])).map(([k, acc]) => acc.line(k));
}

/** Groups rows by a key into accumulators (a key joined with NUL, which no id contains). */
class Groups {
  readonly map = new Map<string, [string[], Acc]>();
  get(key: string[]): Acc {
    const k = key.join('\u0000');
    let g = this.map.get(k);
    if (!g) this.map.set(k, (g = [key, new Acc()]));
    return g[1];
  }
  lines(): ReportLine[] {
    return grouped(this.map.values());
  }
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();
/** Day of each quarter hour seen (zone offsets are whole quarter hours): Intl is far too slow to ask per call. */
const dayMemo = new Map<string, Map<number, string>>();

let lastUtcDay = Number.NaN;
let lastUtcText = '';

/** YYYY-MM-DD of an instant in a time zone. */
export function dayOf(millis: number, timeZone: string): string {
  if (timeZone === 'UTC') {
    const d = Math.floor(millis / 86_400_000);
    if (d !== lastUtcDay) {
      lastUtcDay = d;
      lastUtcText = new Date(d * 86_400_000).toISOString().slice(0, 10);
    }
    return lastUtcText;
  }
  let memo = dayMemo.get(timeZone);
  if (!memo) dayMemo.set(timeZone, (memo = new Map()));
  const slot = Math.floor(millis / 900_000);
  const hit = memo.get(slot);
  if (hit !== undefined) return hit;
  let f = dayFormats.get(timeZone);
  if (!f) dayFormats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  const parts = f.formatToParts(new Date(slot * 900_000));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const day = `${get('year')}-${pad2(get('month'))}-${pad2(get('day'))}`;
  if (memo.size > 10_000) memo.clear();
  memo.set(slot, day);
  return day;
}

/**
 * The day a call is shown on: its span's end time when that lies in the period, else (a call charged to its
 * arrival because its end time was too old or too far ahead) its arrival, kept inside the period.
 */
function callDayMillis(c: ReportCall, period: BillingPeriod): number {
  const start = period.start.getTime();
  const end = period.end.getTime();
  if (c.endTimeMillis >= start && c.endTimeMillis < end) return c.endTimeMillis;
  const at = c.receivedAtMillis ?? c.endTimeMillis;
  return Math.min(end - 1, Math.max(start, at));
}

/**
 * The report's lines, in key order. by user: one line per (user, plan) the period's calls were billed under;
 * by plan / model / provider: summed from the rollups; by feature / day: one pass over the period's calls holding
 * one accumulator per feature or day (never a list of calls).
 */
export async function* reportLines(ledger: ReportLedger, q: ReportQuery): AsyncGenerator<ReportLine> {
  const start = q.period.start;
  const periodIso = start.toISOString();
  switch (q.by) {
    case 'user':
    case 'plan': {
      const adjustments = q.by === 'user' ? userAdjustments(q.audits, periodIso) : undefined;
      const withAdjustment = (l: ReportLine): ReportLine => (adjustments ? { ...l, adjustmentUsd: adjustments.get(`${l.key[0]}\u0000${l.key[1]}`) ?? '0' } : l);
      if (typeof ledger.scanPeriodRollups === 'function') {
        // Streamed in (user, plan) order: one line per rollup for by user; a few plan accumulators for by plan.
        const scan = ledger.scanPeriodRollups(start, q.user !== undefined ? { userId: q.user } : {});
        const groups = new Groups();
        for await (const r of scan) {
          if (q.user !== undefined && r.userId !== q.user) continue;
          const acc = q.by === 'user' ? new Acc() : groups.get([r.plan]);
          acc.add(r.tokens, r.requests, r.unpricedRequests ?? 0, r.costUsd);
          if (q.by === 'user') yield withAdjustment(acc.line([r.userId, r.plan]));
        }
        if (q.by === 'plan') yield* groups.lines();
        return;
      }
      const rollups = (await ledger.loadPeriodRollups(start, { unpriced: true })).filter(
        (r) => Date.parse(r.periodStart) === start.getTime() && (q.user === undefined || r.userId === q.user),
      );
      if (q.by === 'user') {
        rollups.sort((a, b) => compareKeys([a.userId, a.plan], [b.userId, b.plan]));
        for (const r of rollups) {
          const acc = new Acc();
          acc.add(r.tokens, r.requests, r.unpricedRequests ?? 0, r.costUsd);
          yield withAdjustment(acc.line([r.userId, r.plan]));
        }
        return;
      }
      const groups = new Groups();
      for (const r of rollups) groups.get([r.plan]).add(r.tokens, r.requests, r.unpricedRequests ?? 0, r.costUsd);
      yield* groups.lines();
      return;
    }
    case 'model':
    case 'provider': {
      const rows = q.user === undefined ? await ledger.periodModelUsage(start) : await ledger.userModelUsage(q.user, start);
      const groups = new Groups();
      for (const r of rows) {
        groups.get(q.by === 'model' ? [r.provider, r.model] : [r.provider]).add(r.tokens, r.requests, r.unpricedRequests ?? 0, r.costUsd);
      }
      yield* groups.lines();
      return;
    }
    case 'feature':
    case 'day': {
      if (typeof ledger.scanCalls !== 'function') {
        throw new ReportError(`--by ${q.by} needs the per-call record, and this ledger cannot scan its calls`);
      }
      const groups = new Groups();
      const tz = q.timeZone ?? 'UTC';
      for await (const c of ledger.scanCalls({ periodStart: start, ...(q.user !== undefined ? { userId: q.user } : {}) })) {
        if (c.periodStart !== periodIso) continue;
        const key = q.by === 'feature' ? [c.feature ?? NO_FEATURE_KEY] : [dayOf(callDayMillis(c, q.period), tz)];
        groups.get(key).add(c.usage, 1, c.priced ? 0 : 1, c.priced ? c.totalCostUsd : '0');
      }
      yield* groups.lines();
      return;
    }
  }
}

/** Per (user, plan) of the period: the sum of the re-pricings' differences (undefined when none touched it). */
function userAdjustments(audits: readonly RepriceAudit[] | undefined, periodIso: string): Map<string, string> | undefined {
  if (audits === undefined || audits.length === 0) return undefined;
  const sums = new Map<string, ExactDecimal>();
  for (const a of audits) {
    for (const u of a.users) {
      if (u.periodStart !== periodIso) continue;
      const k = `${u.userId}\u0000${u.plan}`;
      sums.set(k, (sums.get(k) ?? new ExactDecimal(0)).plus(u.deltaUsd));
    }
  }
  return new Map([...sums].map(([k, v]) => [k, v.toFixed()]));
}

/** One re-pricing's part in a period (and for one user): calls and difference. */
export function auditShare(a: RepriceAudit, periodIso: string, user?: string): { calls: number; deltaUsd: string } {
  let calls = 0;
  let delta = new ExactDecimal(0);
  for (const u of a.users) {
    if (u.periodStart !== periodIso || (user !== undefined && u.userId !== user)) continue;
    calls += u.calls;
    delta = delta.plus(u.deltaUsd);
  }
  return { calls, deltaUsd: delta.toFixed() };
}

/** A report that cannot be made (a bad argument, a breakdown the ledger cannot give). */
export class ReportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportError';
  }
}

/** Running totals of the lines as they stream past: the report's total line is their exact sum. */
export class ReportTotals {
  readonly #acc = new Acc();

  add(l: ReportLine): void {
    this.#acc.add(l.tokens, l.requests, l.unpricedRequests, l.costUsd);
  }

  line(): ReportLine {
    return this.#acc.line([]);
  }
}

/** Exact conversion of a USD amount at a configured rate (units of the currency per USD): linear, so converted
 * lines still add up exactly to the converted total. */
export function convertExact(usd: string, rate: string): string {
  return new ExactDecimal(usd).times(new ExactDecimal(rate)).toFixed();
}
