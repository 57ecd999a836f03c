/**
 * Hand-written implementations of the exporter's ports (src/exporter/ports.ts) for tests that are about the
 * exporter itself (HTTP plumbing, metrics, rollover) rather than the ledger: an in-memory ledger with the same
 * exactly-once and rollup semantics, month-in-UTC periods, and a switch that makes the ledger unavailable.
 */
import { Decimal } from 'decimal.js';
import { TOKEN_TYPES, type TokenType } from '../../src/contract/names.js';
import type { CommitResult, LedgerRecord, PeriodRollup } from '../../src/ledger/types.js';
import type { BillingPeriod, PlanLimits } from '../../src/plans/types.js';
import type { LedgerPort, ModelUsage, PlanPort } from '../../src/exporter/ports.js';

export class LedgerDownError extends Error {}

export class MemoryLedger implements LedgerPort {
  readonly records = new Map<string, LedgerRecord>();
  down = false;
  commits = 0;
  closed = false;
  /** Resolves commits only when released (to test shutdown with commits in flight). */
  gate: Promise<void> | undefined;

  async commit(records: LedgerRecord[]): Promise<CommitResult> {
    if (this.gate) await this.gate;
    if (this.down) throw new LedgerDownError('connection refused');
    this.commits++;
    const committed: LedgerRecord[] = [];
    const duplicates: LedgerRecord[] = [];
    const touched = new Set<string>();
    for (const r of records) {
      const id = `${r.traceId}/${r.spanId}`;
      if (this.records.has(id)) {
        duplicates.push(r);
        continue;
      }
      this.records.set(id, r);
      committed.push(r);
      touched.add(`${r.periodStart}\u0000${r.userId}\u0000${r.plan}`);
    }
    const rollups = this.rollups().filter((x) => touched.has(`${x.periodStart}\u0000${x.userId}\u0000${x.plan}`));
    return { committed, duplicates, rollups };
  }

  /** The per-user totals; `withUnpriced` adds unpricedRequests where non-zero, as the real loadPeriodRollups does. */
  rollups(withUnpriced = false): PeriodRollup[] {
    const map = new Map<string, PeriodRollup>();
    for (const r of this.records.values()) {
      const k = `${r.periodStart}\u0000${r.userId}\u0000${r.plan}`;
      let x = map.get(k);
      if (!x) {
        x = { periodStart: r.periodStart, userId: r.userId, plan: r.plan, tokens: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, requests: 0, costUsd: '0' };
        map.set(k, x);
      }
      for (const t of TOKEN_TYPES) x.tokens[t] += r.usage[t];
      x.requests++;
      if (withUnpriced && !r.priced) x.unpricedRequests = (x.unpricedRequests ?? 0) + 1;
      x.costUsd = new Decimal(x.costUsd).plus(r.totalCostUsd).toFixed();
    }
    return [...map.values()];
  }

  async ping(): Promise<void> {
    if (this.down) throw new LedgerDownError('connection refused');
  }

  async loadPeriodRollups(periodStart: Date, options: { unpriced?: boolean } = {}): Promise<PeriodRollup[]> {
    if (this.down) throw new LedgerDownError('connection refused');
    return this.rollups(options.unpriced === true).filter((r) => Date.parse(r.periodStart) === periodStart.getTime());
  }

  private modelUsage(filter: (r: LedgerRecord) => boolean): ModelUsage[] {
    const map = new Map<string, ModelUsage>();
    for (const r of this.records.values()) {
      if (!filter(r)) continue;
      const k = `${r.userId}\u0000${r.plan}\u0000${r.provider}\u0000${r.model}`;
      let m = map.get(k);
      if (!m) {
        m = { userId: r.userId, plan: r.plan, provider: r.provider, model: r.model, tokens: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, requests: 0, unpricedRequests: 0, costUsd: '0' };
        map.set(k, m);
      }
      for (const t of TOKEN_TYPES) m.tokens[t as TokenType] += r.usage[t];
      m.requests++;
      if (!r.priced) m.unpricedRequests! += 1;
      m.costUsd = new Decimal(m.costUsd).plus(r.totalCostUsd).toFixed();
    }
    return [...map.values()];
  }

  async userModelUsage(userId: string, periodStart: Date): Promise<ModelUsage[]> {
    if (this.down) throw new LedgerDownError('connection refused');
    return this.modelUsage((r) => r.userId === userId && Date.parse(r.periodStart) === periodStart.getTime());
  }

  async periodModelUsage(periodStart: Date): Promise<ModelUsage[]> {
    if (this.down) throw new LedgerDownError('connection refused');
    return this.modelUsage((r) => Date.parse(r.periodStart) === periodStart.getTime());
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export function monthUtc(at: Date): BillingPeriod {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
  return { start, end };
}

export class SimplePlans implements PlanPort {
  constructor(
    readonly plans: Record<string, PlanLimits> = {
      free: { tokens: 50_000, requests: 10 },
      pro: { tokens: 500_000, requests: 100 },
      team: { tokens: 2_000_000, requests: 500 },
    },
    readonly users: Record<string, { plan?: string; limits?: PlanLimits }> = {},
    readonly defaultPlan = 'free',
  ) {}
  planFor(userId: string, planFromSpan: string | undefined): string {
    return this.users[userId]?.plan ?? (planFromSpan && this.plans[planFromSpan] ? planFromSpan : this.defaultPlan);
  }
  limitsFor(userId: string, plan: string): PlanLimits {
    return { ...(this.plans[plan] ?? {}), ...(this.users[userId]?.limits ?? {}) };
  }
  periodFor(at: Date): BillingPeriod {
    return monthUtc(at);
  }
  planNames(): string[] {
    return Object.keys(this.plans);
  }
}

export class FakeClock {
  constructor(public t: Date) {}
  now(): Date {
    return this.t;
  }
}
