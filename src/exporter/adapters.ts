import { Decimal } from 'decimal.js';
import type { TokenmeterConfig } from '../config/index.js';
import { IngestError, decodeMetricsRequest, decodeTraceRequest, extractUsage, type DecodedSpan } from '../ingest/index.js';
import { GroupCommitter, LedgerUnavailableError, discountsFromTiers, openLedger } from '../ledger/index.js';
import { BillingCalendar, PlanResolver } from '../plans/index.js';
import { PriceBook, convertFromUsd, formatMoney } from '../pricing/index.js';
import type { LedgerPort } from './ports.js';
import type { ExporterClock, ExporterPorts } from './exporter.js';
import type { OtlpDecoders } from './otlp-handler.js';
import type { DisplayMoney } from './usage-api.js';

/** The OTLP decoders of src/ingest with the configured decompressed-size cap. */
export function ingestDecoders(maxDecompressedBytes: number): OtlpDecoders<DecodedSpan> {
  const options = { maxDecompressedBytes };
  return {
    decodeTraces: (body, ct, ce) => decodeTraceRequest(body, ct, ce, options),
    decodeMetrics: (body, ct, ce) => decodeMetricsRequest(body, ct, ce, options),
    statusOf: (err) => (err instanceof IngestError ? err.status : undefined),
  };
}

/** Display conversion for the configured currency (nothing extra when it is USD). */
export function displayMoney(config: TokenmeterConfig): DisplayMoney {
  const currency = config.display.currency;
  if (currency === 'USD') return () => undefined;
  const rates = (config.display.rates ?? {}) as Record<string, string>;
  return (usd) => {
    try {
      return { currency, cost: formatMoney(convertFromUsd(new Decimal(usd), currency, rates), currency) };
    } catch {
      return undefined;
    }
  };
}

const HOUR_MILLIS = 3_600_000;

/** Binds the exporter to the real ledger, plans, pricing and ingest modules for this configuration. */
export async function createPorts(config: TokenmeterConfig, clock: ExporterClock): Promise<ExporterPorts<unknown>> {
  const plans = new PlanResolver(config.plans, config.users);
  const calendar = new BillingCalendar(config.period);
  const pricing = PriceBook.load(config.pricing.overrides ? { overrides: config.pricing.overrides } : {});
  const tiers = config.pricing.volume_discounts;
  const discounts = tiers && Object.keys(tiers).length > 0 ? discountsFromTiers(tiers) : undefined;
  const ledger = await openLedger(config.storage, {
    dedupWindowMillis: config.ledger.dedup_window,
    clock,
    ...(discounts ? { discounts } : {}),
  });
  const committer = new GroupCommitter(ledger);

  // Retention: per-call records older than `retention` are pruned (never inside the dedup window; period totals stay).
  const prune = () => {
    const olderThan = new Date(clock.now().getTime() - Math.max(config.ledger.retention, config.ledger.dedup_window));
    ledger.prune({ olderThan }).catch(() => {});
  };
  const pruneTimer = setInterval(prune, HOUR_MILLIS);
  pruneTimer.unref();
  prune();

  const decoders = ingestDecoders(config.limits.max_decompressed_bytes);
  const port: LedgerPort = {
    commit: (records) => committer.commit(records),
    ping: () => ledger.ping(),
    loadPeriodRollups: (start) => ledger.loadPeriodRollups(start),
    userModelUsage: (user, start) => ledger.userModelUsage(user, start),
    periodModelUsage: (start) => ledger.periodModelUsage(start),
    close: async () => {
      clearInterval(pruneTimer);
      await committer.close();
      await ledger.close();
    },
  };
  return {
    ledger: port,
    plans: {
      planFor: (user, spanPlan) => plans.planFor(user, spanPlan),
      limitsFor: (user, plan) => plans.limitsFor(user, plan),
      periodFor: (at) => calendar.periodFor(at),
      planNames: () => plans.planNames(),
    },
    pricing,
    decoders: decoders as OtlpDecoders<unknown>,
    extract: (span) => extractUsage(span as DecodedSpan),
    isUnavailable: (err) => err instanceof LedgerUnavailableError,
    display: displayMoney(config),
  };
}
