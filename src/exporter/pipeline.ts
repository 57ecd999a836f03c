import { markPrevalidated, validateRecord } from '../ledger/ledger.js';
import type { CommitResult, LedgerRecord } from '../ledger/types.js';
import { processingScope } from '../pricing/processing.js';
import { parseServiceTier } from '../pricing/service-tier.js';
import type { PriceQuery, PriceStringsResult } from '../pricing/types.js';
import type { UsageRecord } from '../usage/usage-record.js';
import type { LedgerHealth } from './ledger-health.js';
import type { ExporterMetrics } from './metrics.js';
import type { ExtractResult, LedgerPort, PlanPort, PricingPort } from './ports.js';

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
  /** Readiness and ledger_up from the commits' outcomes (failed commits logged, rate-limited). */
  health?: LedgerHealth;
  /** Which period and price a call is charged to (config `ingest`); default 6 h late arrival, 5 min clock skew. */
  chargeWindow?: ChargeWindow;
}

/**
 * The ISO start of the billing period of an instant, remembering the last few periods: almost every span of a
 * request falls in the current one, and working a period out (and writing its ISO string) per span is waste.
 * `plans.periodFor` must be a pure function of the instant (the configuration's calendar).
 */
export class PeriodStarts {
  /** Newest first. */
  private readonly recent: { startMillis: number; endMillis: number; startIso: string }[] = [];

  constructor(private readonly plans: PlanPort) {}

  isoStartOf(millis: number): string {
    for (const p of this.recent) if (millis >= p.startMillis && millis < p.endMillis) return p.startIso;
    const period = this.plans.periodFor(new Date(millis));
    const entry = { startMillis: period.start.getTime(), endMillis: period.end.getTime(), startIso: period.start.toISOString() };
    // A period that does not contain the instant (a fake calendar) is answered but not remembered.
    if (!(millis >= entry.startMillis && millis < entry.endMillis)) return entry.startIso;
    this.recent.unshift(entry);
    if (this.recent.length > RECENT_PERIODS) this.recent.pop();
    return entry.startIso;
  }
}

const RECENT_PERIODS = 4;

/** Default `ingest.late_arrival_window` and `ingest.clock_skew` (src/config). */
export const DEFAULT_LATE_ARRIVAL_MILLIS = 6 * 3_600_000;
export const DEFAULT_CLOCK_SKEW_MILLIS = 5 * 60_000;

export interface ChargeWindow {
  lateArrivalMillis: number;
  clockSkewMillis: number;
}

/**
 * The instant whose billing period and price a call is charged to (DESIGN.md: no client-set timestamp moves usage
 * out of the current period or below its price). The span's end time when it lies in [arrival − late-arrival
 * window, arrival + clock skew] (capped at the arrival: a clock slightly ahead means now), else the arrival time.
 * `redated` says which side it fell off. The record keeps the span's own end time for reporting either way.
 */
export function chargeInstant(endMillis: number, arrivalMillis: number, w: ChargeWindow): { atMillis: number; redated?: 'late' | 'future' } {
  if (endMillis < arrivalMillis - w.lateArrivalMillis) return { atMillis: arrivalMillis, redated: 'late' };
  if (endMillis > arrivalMillis + w.clockSkewMillis) return { atMillis: arrivalMillis, redated: 'future' };
  return { atMillis: Math.min(endMillis, arrivalMillis) };
}

function priceAt(rec: UsageRecord, pricing: PricingPort, atMillis: number): PriceStringsResult {
  // The same mapping as in-process pricing (trackUsage): OpenAI's `scale` is priority, `default`/`auto` standard.
  const tier = parseServiceTier(rec.serviceTier);
  try {
    const at = new Date(atMillis);
    const query: PriceQuery = { provider: rec.provider, model: rec.rawModel, usage: rec.usage, at };
    if (tier) query.serviceTier = tier;
    // Premiums the span's own attributes reveal: fast mode (usage.speed), regional / data-residency processing
    // (Anthropic inference_geo, a Bedrock geo or in-region profile id, a regional endpoint's server.address).
    if (rec.speed === 'fast') query.speed = 'fast';
    // Per-call fees (web searches, grounding queries) the provider reported.
    if (rec.toolCalls !== undefined) query.toolCalls = rec.toolCalls;
    if (rec.serverAddress !== undefined || rec.inferenceGeo !== undefined || rec.provider === 'aws.bedrock') {
      const scope = processingScope({ provider: rec.provider, rawModel: rec.rawModel, serverAddress: rec.serverAddress, inferenceGeo: rec.inferenceGeo });
      if (scope) query.processing = scope;
    }
    return pricing.priceStrings(query);
  } catch (err) {
    // A pricing failure must not drop the call: it is metered as unpriced (and alerted on), never as free.
    return { priced: false, provider: rec.provider, model: rec.rawModel.toLowerCase(), reason: String(err), suggestions: [] };
  }
}

/**
 * Maps a usage record to its billing period, plan and price: the record the ledger commits. `chargeAtMillis`:
 * the instant whose period and price apply (see `chargeInstant`; default: the span's end time). `arrivalMillis`:
 * when the call reached the exporter; a call that has no price at its charge instant but has one at its arrival
 * (dated before its model's catalog entry) is priced at its arrival, never stored at cost 0.
 */
export function toLedgerRecord(
  rec: UsageRecord,
  plans: PlanPort,
  pricing: PricingPort,
  periods = new PeriodStarts(plans),
  chargeAtMillis = rec.endTimeMillis,
  arrivalMillis = chargeAtMillis,
): LedgerRecord {
  const plan = plans.planFor(rec.userId, rec.planFromSpan);
  const periodStart = periods.isoStartOf(chargeAtMillis);
  let price = priceAt(rec, pricing, chargeAtMillis);
  if (!price.priced && arrivalMillis !== chargeAtMillis) {
    const atArrival = priceAt(rec, pricing, arrivalMillis);
    if (atArrival.priced) price = atArrival;
  }
  // Built field by field (not spread): one object shape for every record, on the per-span path.
  const out: LedgerRecord = {
    traceId: rec.traceId,
    spanId: rec.spanId,
    endTimeMillis: rec.endTimeMillis,
    provider: price.provider,
    rawModel: rec.rawModel,
    operation: rec.operation,
    usage: rec.usage,
    estimated: rec.estimated,
    userId: rec.userId,
    outcome: rec.outcome,
    source: rec.source,
    plan,
    periodStart,
    model: price.model,
    priced: price.priced,
    costUsd: price.priced ? price.costUsd : { input: '0', cache_read: '0', cache_write: '0', output: '0', reasoning: '0' },
    totalCostUsd: price.priced ? price.totalUsd : '0',
  };
  if (price.priced) {
    out.priceId = price.priceId;
    if (price.feeCostUsd !== undefined) out.feeCostUsd = price.feeCostUsd;
  }
  if (rec.toolCalls !== undefined) out.toolCalls = rec.toolCalls;
  if (rec.planFromSpan !== undefined) out.planFromSpan = rec.planFromSpan;
  if (rec.feature !== undefined) out.feature = rec.feature;
  if (rec.serviceTier !== undefined) out.serviceTier = rec.serviceTier;
  return out;
}

/** What the OTLP response needs: known before the commit, sent once the commit is durable. */
export interface AckOutcome {
  rejected: number;
  messages: string[];
}

/** A request's spans after extraction, planning and pricing, before the commit. */
interface PreparedBatch {
  records: LedgerRecord[];
  rejectedByReason: Map<string, number>;
  messages: string[];
  ignored: number;
  rejected: number;
  /** Records charged to their arrival because their end time was too old / too far ahead. */
  late: number;
  future: number;
}

/**
 * decode → extract → plan + period → price → ledger commit → metrics. Counters move only after the commit
 * succeeded, so a 503 followed by the sender's retry never double counts.
 */
export class Pipeline<S> {
  private readonly periods: PeriodStarts;

  constructor(private readonly o: PipelineOptions<S>) {
    this.periods = new PeriodStarts(o.plans);
  }

  /**
   * Extracts, plans and prices the spans synchronously, then commits. Only the ledger records are kept across
   * the commit's await, not the decoded spans (an attribute map each): with several requests waiting for their
   * group commit, spans held there would survive young-generation collections and be copied and promoted.
   */
  process(spans: readonly S[], ack?: (outcome: AckOutcome) => void): Promise<SpanOutcomes> {
    let batch: PreparedBatch;
    try {
      batch = this.prepare(spans);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.commit(batch, ack);
  }

  private prepare(spans: readonly S[]): PreparedBatch {
    const arrival = this.o.now().getTime();
    const window = this.o.chargeWindow ?? { lateArrivalMillis: DEFAULT_LATE_ARRIVAL_MILLIS, clockSkewMillis: DEFAULT_CLOCK_SKEW_MILLIS };
    let late = 0;
    let future = 0;
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
      else {
        const charge = chargeInstant(r.record.endTimeMillis, arrival, window);
        if (charge.redated === 'late') late++;
        else if (charge.redated === 'future') future++;
        const rec = toLedgerRecord(r.record, this.o.plans, this.o.pricing, this.periods, charge.atMillis, arrival);
        // The ledger's own check, per record: a record it would refuse is rejected alone here (partial success)
        // instead of failing the commit of every other span of the request. Extraction applies the same text rule,
        // so this only catches what a bug lets through.
        try {
          validateRecord(rec, 0, 'trusted');
        } catch (err) {
          this.o.log?.(`a record the ledger would refuse was rejected: ${err instanceof Error ? err.message : String(err)}`);
          reject('invalid_record', `span ${r.record.spanId}: ${err instanceof Error ? err.message.replace(/^record 0: /, '') : String(err)}`);
          continue;
        }
        records.push(rec);
      }
    }
    markPrevalidated(records);
    return { records, rejectedByReason, messages, ignored, rejected, late, future };
  }

  private async commit({ records, rejectedByReason, messages, ignored, rejected, late, future }: PreparedBatch, ack?: (outcome: AckOutcome) => void): Promise<SpanOutcomes> {
    let result: CommitResult = { committed: [], duplicates: [], rollups: [] };
    let acked = false;
    const acknowledge = ack
      ? () => {
          if (acked) return;
          acked = true;
          ack({ rejected, messages });
        }
      : undefined;
    if (records.length > 0) {
      const t0 = performance.now();
      try {
        // The ledger may call `acknowledge` as soon as the records are durable, before it builds its totals.
        result = await this.o.ledger.commit(records, acknowledge);
      } catch (err) {
        if (this.o.isUnavailable(err)) {
          if (this.o.health) this.o.health.commitFailed(err);
          else this.o.metrics.setLedgerUp(false);
          throw new LedgerUnavailable(err);
        }
        // Not an availability problem (a record the ledger refuses: a bug). Never a 200; the request fails with 500.
        this.o.log?.(`ledger commit failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        throw err;
      }
      // Committed: acknowledged now if the ledger did not already. The metrics below move in this same turn,
      // before anyone can scrape.
      acknowledge?.();
      this.o.metrics.observeCommitSeconds((performance.now() - t0) / 1000);
      this.ensurePeriod();
      this.o.metrics.recordCommit(result);
      this.o.health?.commitSucceeded();
      // Counted with the request's commit (a 503 and its retry count once); duplicates of an earlier commit included.
      this.o.metrics.countRedated('late', late);
      this.o.metrics.countRedated('future', future);
    }
    this.o.metrics.countIgnored(ignored);
    for (const [reason, n] of rejectedByReason) this.o.metrics.countRejected(reason, n);
    acknowledge?.();
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
