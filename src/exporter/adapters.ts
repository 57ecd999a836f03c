import { Decimal } from 'decimal.js';
import type { TokenmeterConfig } from '../config/index.js';
import { IngestError, decodeMetricsRequest, decodeTraceRequest, type DecodedSpan } from '../ingest/index.js';
import { convertFromUsd, formatMoney } from '../pricing/index.js';
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

/** Binds the exporter to the real ledger, plans, pricing and ingest modules for this configuration. */
export async function createPorts(config: TokenmeterConfig, clock: ExporterClock): Promise<ExporterPorts<unknown>> {
  void clock;
  void config;
  throw new Error('not wired yet');
}
