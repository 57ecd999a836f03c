import { describe, expect, it } from 'vitest';
import { toLedgerRecord } from '../../src/exporter/pipeline.js';
import type { PricingPort } from '../../src/exporter/ports.js';
import type { PriceQuery } from '../../src/pricing/types.js';
import { zeroUsage } from '../../src/usage/usage.js';
import type { UsageRecord } from '../../src/usage/usage-record.js';
import { SimplePlans } from './fakes.js';

/** A pricing port that remembers the queries it was asked and prices nothing. */
class RecordingPricing implements PricingPort {
  readonly queries: PriceQuery[] = [];
  priceStrings(query: PriceQuery) {
    this.queries.push(query);
    return { priced: false as const, provider: query.provider ?? 'openai', model: query.model, reason: 'test', suggestions: [] };
  }
}

function record(serviceTier: string | undefined): UsageRecord {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    endTimeMillis: Date.UTC(2026, 0, 15),
    provider: 'openai',
    rawModel: 'gpt-4o',
    operation: 'chat',
    usage: { ...zeroUsage(), input: 10 },
    estimated: false,
    userId: 'u1',
    outcome: 'success',
    source: 'tokenmeter',
    ...(serviceTier === undefined ? {} : { serviceTier }),
  };
}

describe('toLedgerRecord', () => {
  // Regression: the exporter had its own list of tier names, so a span saying OpenAI's `scale` was priced at the
  // standard tier while trackUsage (parseServiceTier) priced the same call at priority.
  it.each([
    ['scale', 'priority'],
    ['priority', 'priority'],
    ['Flex', 'flex'],
    ['batch', 'batch'],
    ['default', 'standard'],
    ['turbo', undefined],
    [undefined, undefined],
  ])('maps the span service tier %s to the price tier %s, as in-process pricing does', (raw, tier) => {
    const pricing = new RecordingPricing();
    toLedgerRecord(record(raw), new SimplePlans(), pricing);
    expect(pricing.queries).toHaveLength(1);
    expect(pricing.queries[0]!.serviceTier).toBe(tier);
  });
});
