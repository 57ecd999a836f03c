import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import type { CommitResult, LedgerRecord } from '../ledger/types.js';
import { parseServiceTier } from '../pricing/service-tier.js';
import type { PriceResult } from '../pricing/types.js';
import type { UsageRecord } from '../usage/usage-record.js';
import type { ExporterMetrics } from './metrics.js';
import type { ExtractResult, LedgerPort, PlanPort, PricingPort } from './ports.js';

const ZERO_COSTS: Record<TokenType, string> = { input: '0', cache_read: '0', cache_write: '0', output: '0', reasoning: '0' };

/** The ledger could not commit: the whole request gets 503 + Retry-After and nothing was counted. */
export class LedgerUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super(`ledger unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'LedgerUnavailable';
  }
}

export interface SpanOutcomes {
  /** Spans rejected individually (OTLP partial success). */
  rejected: number;
  /** The first few rejection messages, for the partial-success error message. */
  messages: string[];
  committed: number;
  duplicates: number;
  ignored: number;
}

export interface PipelineOptions<S> {
  metrics: ExporterMetrics;
  ledger: LedgerPort;
  plans: PlanPort;
  pricing: PricingPort;
  extract: (span: S) => ExtractResult;
  isUnavailable: (err: unknown) => boolean;
  now: () => Date;
  log?: (message: string) => void;
}

/** Maps a usage record to its billing period, plan and price: the record the ledger commits. */
export function toLedgerRecord(rec: UsageRecord, plans: PlanPort, pricing: PricingPort): LedgerRecord {
  const plan = plans.planFor(rec.userId, rec.planFromSpan);
  const at = new Date(rec.endTimeMillis);
  const period = plans.periodFor(at);
  // The same mapping as in-process pricing (trackUsage): OpenAI's `scale` is priority, `default`/`auto` standard.
  const tier = parseServiceTier(rec.serviceTier);
  let price: PriceResult;
  try {
    price = pricing.price({ provider: rec.provider, model: rec.rawModel, usage: rec.usage, at, ...(tier ? { serviceTier: tier } : {}) });
  } catch (err) {
    // A pricing failure must not drop the call: it is metered as unpriced (and alerted on), never as free.
    price = { priced: false, provider: rec.provider, model: rec.rawModel.toLowerCase(), reason: String(err), suggestions: [] };
  }
  const base = { ...rec, plan, periodStart: period.start.toISOString(), provider: price.provider, model: price.model };
  if (!price.priced) return { ...base, priced: false, costUsd: { ...ZERO_COSTS }, totalCostUsd: '0' };
  const costUsd = {} as Record<TokenType, string>;
  for (const t of TOKEN_TYPES) costUsd[t] = price.costUsd[t].toFixed();
  return { ...base, priced: true, priceId: price.priceId, costUsd, totalCostUsd: price.totalUsd.toFixed() };
}

/**
 * decode → extract → plan + period → price → ledger commit → metrics. Counters move only after the commit
 * succeeded, so a 503 followed by the sender's retry never double counts.
 */
export class Pipeline<S> {
  constructor(private readonly o: PipelineOptions<S>) {}

  async process(spans: readonly S[]): Promise<SpanOutcomes> {
    const records: LedgerRecord[] = [];
    const rejectedByReason = new Map<string, number>();
    const messages: string[] = [];
    let ignored = 0;
    let rejected = 0;
    const reject = (reason: string, message: string) => {
      rejected++;
      rejectedByReason.set(reason, (rejectedByReason.get(reason) ?? 0) + 1);
      if (messages.length < 5) messages.push(message);
    };
    for (const span of spans) {
      let r: ExtractResult;
      try {
        r = this.o.extract(span);
      } catch (err) {
        reject('extract_failed', `could not read the span's usage: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      if (r.kind === 'ignored') ignored++;
      else if (r.kind === 'rejected') reject(r.reason, r.message);
      else records.push(toLedgerRecord(r.record, this.o.plans, this.o.pricing));
    }

    let result: CommitResult = { committed: [], duplicates: [], rollups: [] };
    if (records.length > 0) {
      const t0 = performance.now();
      try {
        result = await this.o.ledger.commit(records);
      } catch (err) {
        if (this.o.isUnavailable(err)) {
          this.o.metrics.setLedgerUp(false);
          throw new LedgerUnavailable(err);
        }
        // Not an availability problem (a record the ledger refuses: a bug). Never a 200; the request fails with 500.
        this.o.log?.(`ledger commit failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        throw err;
      }
      this.o.metrics.observeCommitSeconds((performance.now() - t0) / 1000);
      this.ensurePeriod();
      this.o.metrics.recordCommit(result);
    }
    this.o.metrics.countIgnored(ignored);
    for (const [reason, n] of rejectedByReason) this.o.metrics.countRejected(reason, n);
    return { rejected, messages, committed: result.committed.length, duplicates: result.duplicates.length, ignored };
  }

  /** Moves the metrics to the current billing period if the clock has passed its end. Returns true on rollover. */
  ensurePeriod(): boolean {
    const now = this.o.now();
    const cur = this.o.metrics.currentPeriod;
    if (cur && now.getTime() < cur.end.getTime() && now.getTime() >= cur.start.getTime()) return false;
    return this.o.metrics.setPeriod(this.o.plans.periodFor(now), this.o.plans.planNames());
  }
}
