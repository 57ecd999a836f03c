import { markPrevalidated, validateRecord } from '../ledger/ledger.js';
import type { CommitResult, LedgerRecord } from '../ledger/types.js';
import { processingScope } from '../pricing/processing.js';
import { parseServiceTier } from '../pricing/service-tier.js';
import type { PriceQuery, PriceStringsResult } from '../pricing/types.js';
import type { UsageRecord } from '../usage/usage-record.js';
import type { LedgerHealth } from './ledger-health.js';
import type { ExporterMetrics } from './metrics.js';
import type { ExtractResult, LedgerPort, PlanPort, PricingPort } from './ports.js';
import type { SpanFacts } from '../ingest/types.js';
import { DEFAULT_FRAMEWORK_SPANS_WINDOW_MILLIS, ProviderLevelTracker, type SupersedeOptions } from './supersede.js';

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
  /** Framework spans not billed because a provider-level instrumentation records the same calls (supersede.ts). */
  superseded: number;
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
  /** Framework spans next to provider-level spans (config `ingest.framework_spans`); default auto, 24 h. */
  supersede?: SupersedeOptions;
  /**
   * Called in the same turn a commit resolved, with every record of it (new and duplicates): admission control
   * settles the calls' reservations here (reservations.ts).
   */
  onCommitted?: (records: readonly LedgerRecord[]) => void;
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

/**
 * One span after the stages that need no state across requests (extraction, charge instant, plan, period, price,
 * the ledger's record check): what `prepareSpans` returns, in-process or from a worker thread (prepared-codec.ts).
 * A usage span is priced even if the main thread then finds it superseded (supersede needs state).
 */
export type PreparedSpan =
  | { kind: 'ignored' }
  | { kind: 'rejected'; reason: string; message: string }
  | {
      kind: 'usage';
      /** The usage record's provider (supersede is keyed on it, as extraction named it). */
      provider: string;
      facts?: SpanFacts;
      record: LedgerRecord;
      /** Charged to its arrival: its end time was too old / too far ahead. */
      redated?: 'late' | 'future';
      /** Why the ledger would refuse the record (validateRecord's message): rejected alone. */
      invalid?: string;
    };

export interface PrepareContext<S> {
  extract: (span: S) => ExtractResult;
  plans: PlanPort;
  pricing: PricingPort;
  periods: PeriodStarts;
  chargeWindow: ChargeWindow;
}

/** Extracts, plans and prices a request's spans (no state across requests: runs in a worker thread as well). */
export function prepareSpans<S>(spans: readonly S[], c: PrepareContext<S>, arrival: number): PreparedSpan[] {
  const out: PreparedSpan[] = new Array<PreparedSpan>(spans.length);
  for (let i = 0; i < spans.length; i++) {
    let r: ExtractResult;
    try {
      r = c.extract(spans[i]!);
    } catch (err) {
      r = { kind: 'rejected', reason: 'extract_failed', message: `could not read the span's usage: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (r.kind !== 'usage') {
      out[i] = r;
      continue;
    }
    const charge = chargeInstant(r.record.endTimeMillis, arrival, c.chargeWindow);
    const record = toLedgerRecord(r.record, c.plans, c.pricing, c.periods, charge.atMillis, arrival);
    const p: PreparedSpan = { kind: 'usage', provider: r.record.provider, record };
    if (r.facts !== undefined) p.facts = r.facts;
    if (charge.redated !== undefined) p.redated = charge.redated;
    try {
      validateRecord(record, 0, 'trusted');
    } catch (err) {
      p.invalid = err instanceof Error ? err.message : String(err);
    }
    out[i] = p;
  }
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
  superseded: number;
  rejected: number;
  /** Facts to count once a record is committed (not for duplicates), by trace id + span id; only spans that have some. */
  noted: Map<string, NotedFacts>;
  /** Records charged to their arrival because their end time was too old / too far ahead. */
  late: number;
  future: number;
}

/** What a committed record's span reported beyond its usage: counted after the commit (tokenmeter_missing_usage_spans_total, tokenmeter_reported_cost_usd_total). */
interface NotedFacts {
  source: string;
  missingUsage?: 'estimated' | 'no_content' | 'not_estimated';
  reportedCostUsd?: number;
}

/**
 * decode → extract → plan + period → price → ledger commit → metrics. Counters move only after the commit
 * succeeded, so a 503 followed by the sender's retry never double counts.
 */
export class Pipeline<S> {
  private readonly periods: PeriodStarts;
  private readonly providerLevel: ProviderLevelTracker;

  constructor(private readonly o: PipelineOptions<S>) {
    this.periods = new PeriodStarts(o.plans);
    this.providerLevel = new ProviderLevelTracker(o.supersede ?? { mode: 'auto', windowMillis: DEFAULT_FRAMEWORK_SPANS_WINDOW_MILLIS });
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

  /** The arrival instant of a request (the pipeline's clock): taken before a worker thread prepares its spans. */
  arrivalMillis(): number {
    return this.o.now().getTime();
  }

  /**
   * Commits spans a worker thread (ingest-workers.ts) already extracted, planned and priced with `prepareSpans`,
   * for a request that arrived at `arrivalMillis`. What needs state (framework spans superseded by provider-level
   * ones, the counts) is done here, exactly as `process` does.
   */
  processPrepared(prepared: readonly PreparedSpan[], arrivalMillis: number, ack?: (outcome: AckOutcome) => void): Promise<SpanOutcomes> {
    let batch: PreparedBatch;
    try {
      batch = this.assemble(prepared, arrivalMillis);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.commit(batch, ack);
  }

  private prepare(spans: readonly S[]): PreparedBatch {
    const arrival = this.o.now().getTime();
    const window = this.o.chargeWindow ?? { lateArrivalMillis: DEFAULT_LATE_ARRIVAL_MILLIS, clockSkewMillis: DEFAULT_CLOCK_SKEW_MILLIS };
    const prepared = prepareSpans(spans, { extract: this.o.extract, plans: this.o.plans, pricing: this.o.pricing, periods: this.periods, chargeWindow: window }, arrival);
    return this.assemble(prepared, arrival);
  }

  /** The stateful half of preparing a request: supersede, rejections, the facts to count after the commit. */
  private assemble(prepared: readonly PreparedSpan[], arrival: number): PreparedBatch {
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
    let superseded = 0;
    const noted = new Map<string, NotedFacts>();
    // The request's provider-level spans first: a framework span in the same request is judged knowing them.
    for (const r of prepared) if (r.kind === 'usage' && r.facts !== undefined) this.providerLevel.learn(r.facts, r.provider, arrival);
    for (const r of prepared) {
      if (r.kind === 'ignored') ignored++;
      else if (r.kind === 'rejected') reject(r.reason, r.message);
      else if (r.facts !== undefined && this.providerLevel.superseded(r.facts, r.provider, arrival)) superseded++;
      else {
        const rec = r.record;
        if (r.invalid !== undefined) {
          // The ledger's own check refused it (prepareSpans): rejected alone (partial success) instead of failing
          // the commit of every other span of the request. Extraction applies the same text rule, so this only
          // catches what a bug lets through.
          this.o.log?.(`a record the ledger would refuse was rejected: ${r.invalid}`);
          reject('invalid_record', `span ${rec.spanId}: ${r.invalid.replace(/^record 0: /, '')}`);
          continue;
        }
        if (r.facts !== undefined && (r.facts.missingUsage !== undefined || r.facts.reportedCostUsd !== undefined)) {
          const n: NotedFacts = { source: rec.source };
          if (r.facts.missingUsage !== undefined) n.missingUsage = r.facts.missingUsage;
          if (r.facts.reportedCostUsd !== undefined) n.reportedCostUsd = r.facts.reportedCostUsd;
          noted.set(`${rec.traceId}/${rec.spanId}`, n);
        }
        if (r.redated === 'late') late++;
        else if (r.redated === 'future') future++;
        records.push(rec);
      }
    }
    markPrevalidated(records);
    return { records, rejectedByReason, messages, ignored, superseded, rejected, noted, late, future };
  }

  private async commit({ records, rejectedByReason, messages, ignored, superseded, rejected, noted, late, future }: PreparedBatch, ack?: (outcome: AckOutcome) => void): Promise<SpanOutcomes> {
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
      if (this.o.onCommitted !== undefined) {
        try {
          this.o.onCommitted(records);
        } catch (err) {
          this.o.log?.(`settling reservations failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      this.o.metrics.observeCommitSeconds((performance.now() - t0) / 1000);
      this.ensurePeriod();
      this.o.metrics.recordCommit(result);
      this.o.health?.commitSucceeded();
      // Counted with the request's commit (a 503 and its retry count once); duplicates of an earlier commit included.
      this.o.metrics.countRedated('late', late);
      this.o.metrics.countRedated('future', future);
      if (noted.size > 0) {
        for (const rec of result.committed) {
          const n = noted.get(`${rec.traceId}/${rec.spanId}`);
          if (n === undefined) continue;
          if (n.missingUsage !== undefined) this.o.metrics.countMissingUsage(n.source, n.missingUsage);
          if (n.reportedCostUsd !== undefined) this.o.metrics.addReportedCost(rec.provider, rec.model, n.reportedCostUsd);
        }
      }
    }
    this.o.metrics.countIgnored(ignored);
    this.o.metrics.countSuperseded(superseded);
    for (const [reason, n] of rejectedByReason) this.o.metrics.countRejected(reason, n);
    acknowledge?.();
    return { rejected, messages, committed: result.committed.length, duplicates: result.duplicates.length, ignored, superseded };
  }

  /** Moves the metrics to the current billing period if the clock has passed its end. Returns true on rollover. */
  ensurePeriod(): boolean {
    const now = this.o.now();
    const cur = this.o.metrics.currentPeriod;
    if (cur && now.getTime() < cur.end.getTime() && now.getTime() >= cur.start.getTime()) return false;
    return this.o.metrics.setPeriod(this.o.plans.periodFor(now), this.o.plans.planNames());
  }
}
