import { Decimal } from 'decimal.js';
import type { TokenmeterConfig } from '../config/index.js';
import { IngestError, decodeMetricsRequest, decodeTraceRequest, extractUsage, type DecodedSpan } from '../ingest/index.js';
import { GroupCommitter, LedgerUnavailableError, discountsFromTiers, isPostgresStorage, openLedger, type Ledger } from '../ledger/index.js';
import { PlanResolver } from '../plans/index.js';
import { calendarOf } from '../report/calendar.js';
import { convertFromUsd, formatMoney } from '../pricing/index.js';
import { loadPricing } from './price-reload.js';
import { LedgerConnection } from './ledger-connection.js';
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
      const amount = convertFromUsd(new Decimal(usd), currency, rates);
      // `amount` exact, `cost` rounded for display (e.g. "€0.01").
      return { currency, amount: amount.toFixed(), cost: formatMoney(amount, currency) };
    } catch {
      return undefined;
    }
  };
}

const HOUR_MILLIS = 3_600_000;

/** An open ledger and the group committer in front of it. */
interface OpenLedger {
  ledger: Ledger;
  committer: GroupCommitter;
}

export interface CreatePortsOptions {
  /** Called when the ledger opens after the start (it was unreachable then): the exporter loads its gauges. */
  onLedgerOpen?: () => void;
  log?: (line: string) => void;
}

/**
 * Binds the exporter to the real ledger, plans, pricing and ingest modules for this configuration. A PostgreSQL
 * ledger that cannot be reached at start is opened (and migrated) in the background: until then every ledger
 * operation fails as unavailable (503 + Retry-After, /readyz 503).
 */
export async function createPorts(config: TokenmeterConfig, clock: ExporterClock, options: CreatePortsOptions = {}): Promise<ExporterPorts<unknown>> {
  const plans = new PlanResolver(config.plans, config.users);
  const calendar = calendarOf(config.period);
  const periodFor = (at: Date) => calendar.periodFor(at);
  const { pricing, fingerprint: pricingFingerprint, source: pricingSource } = loadPricing(config.pricing);
  const tiers = config.pricing.volume_discounts;
  const discounts = tiers && Object.keys(tiers).length > 0 ? discountsFromTiers(tiers) : undefined;
  const shared = isPostgresStorage(config.storage);

  let pruneTimer: NodeJS.Timeout | undefined;
  // Retention: per-call records older than `retention` are pruned (never inside the dedup window; period totals stay).
  const startPruning = ({ ledger }: OpenLedger) => {
    const prune = () => {
      const olderThan = new Date(clock.now().getTime() - Math.max(config.ledger.retention, config.ledger.dedup_window));
      ledger.prune({ olderThan }).catch(() => {});
    };
    pruneTimer = setInterval(prune, HOUR_MILLIS);
    pruneTimer.unref();
    prune();
  };

  const connection = await LedgerConnection.start<OpenLedger>({
    open: async () => {
      const ledger = await openLedger(config.storage, { dedupWindowMillis: config.ledger.dedup_window, clock, ...(discounts ? { discounts } : {}) });
      // The metrics read a commit's changed rows live (CommitResult.touched) instead of its sorted rollups.
      return { ledger, committer: new GroupCommitter(ledger, { commitOptions: { liveTotals: true } }) };
    },
    // Only a shared PostgreSQL is waited for; an embedded directory that cannot be opened is a local problem to fix.
    retryable: (err) => shared && err instanceof LedgerUnavailableError,
    close: async ({ ledger, committer }) => {
      await committer.close();
      await ledger.close();
    },
    unavailable: (message) => new LedgerUnavailableError(message),
    onOpen: (opened) => {
      startPruning(opened);
      options.onLedgerOpen?.();
    },
    maxDelayMillis: Math.max(1000, config.ledger.retry_after),
    ...(options.log ? { log: options.log } : {}),
  });
  if (connection.ledger) startPruning(connection.ledger);

  const decoders = ingestDecoders(config.limits.max_decompressed_bytes);
  // Each call reads the connection: a rejected promise (not a throw) when the ledger is not open yet.
  const use = async <T>(fn: (opened: OpenLedger) => Promise<T>): Promise<T> => fn(connection.require());
  const port: LedgerPort = {
    // The pipeline builds its records (decoder ids, calendar periods, priceStrings costs): a structural check only.
    commit: (records, onDurable) => use(({ committer }) => committer.commitTrusted(records, onDurable)),
    ping: () => use(({ ledger }) => ledger.ping()),
    loadPeriodRollups: (start, opts) => use(({ ledger }) => ledger.loadPeriodRollups(start, opts)),
    userModelUsage: (user, start) => use(({ ledger }) => ledger.userModelUsage(user, start)),
    periodModelUsage: (start) => use(({ ledger }) => ledger.periodModelUsage(start)),
    scanCalls: (filter) => connection.require().ledger.scanCalls(filter),
    scanPeriodRollups: (start, opts) => connection.require().ledger.scanPeriodRollups(start, opts),
    repriceAudits: (start) => use(({ ledger }) => ledger.repriceAudits(start)),
    applyReprice: (request) => use(({ ledger }) => ledger.applyReprice(request)),
    scanCallRange: (filter) => connection.require().ledger.scanCalls(filter),
    close: async () => {
      if (pruneTimer) clearInterval(pruneTimer);
      await connection.close();
    },
  };
  return {
    ledger: port,
    plans: {
      planFor: (user, spanPlan) => plans.planFor(user, spanPlan),
      limitsFor: (user, plan) => plans.limitsFor(user, plan),
      periodFor,
      periodNamed: (year, month) => calendar.periodNamed!(year, month),
      timeZone: calendar.timeZone,
      planNames: () => plans.planNames(),
    },
    pricing,
    pricingFingerprint,
    ...(pricingSource !== undefined ? { pricingSource } : {}),
    decoders: decoders as OtlpDecoders<unknown>,
    extract: (span) => extractUsage(span as DecodedSpan),
    isUnavailable: (err) => err instanceof LedgerUnavailableError,
    display: displayMoney(config),
  };
}
