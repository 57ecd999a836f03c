/**
 * prepared-codec.ts (issue 15): what an ingest worker sends the main thread is unpacked into exactly the prepared
 * spans it packed, field for field, for every kind of span, hostile strings and the spans the fixed layout cannot
 * carry (sent as objects).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packSpans, unpackSpans } from '../../src/exporter/prepared-codec.js';
import type { PreparedSpan } from '../../src/exporter/pipeline.js';
import type { LedgerRecord } from '../../src/ledger/types.js';
import { hostileString } from '../ingest/hostile-strings.js';

function record(over: Partial<LedgerRecord> = {}): LedgerRecord {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    endTimeMillis: 1_796_323_161_832,
    provider: 'openai',
    rawModel: 'gpt-4o-mini-2024-07-18',
    operation: 'chat',
    usage: { input: 4107, cache_read: 0, cache_write: 0, output: 437, reasoning: 0 },
    estimated: false,
    userId: 'user-1',
    outcome: 'success',
    source: 'tokenmeter',
    plan: 'team',
    periodStart: '2026-12-01T00:00:00.000Z',
    model: 'gpt-4o-mini',
    priced: true,
    costUsd: { input: '0.00061605', cache_read: '0', cache_write: '0', output: '0.0002622', reasoning: '0' },
    totalCostUsd: '0.00087825',
    ...over,
  };
}

/** Through the packed form as postMessage carries it (a structured clone; the typed arrays' buffers transferred). */
function roundTrip(spans: PreparedSpan[]): PreparedSpan[] {
  const packed = packSpans(spans);
  return unpackSpans(structuredClone(packed, { transfer: [packed.slots.buffer as ArrayBuffer, packed.nums.buffer as ArrayBuffer] }));
}

describe('prepared-codec', () => {
  it('carries every kind of prepared span exactly', () => {
    const spans: PreparedSpan[] = [
      { kind: 'ignored' },
      { kind: 'rejected', reason: 'invalid_usage', message: 'span x: gen_ai.usage.input_tokens is -5' },
      { kind: 'usage', provider: 'openai', record: record() },
      { kind: 'usage', provider: 'azure.ai.openai', record: record({ provider: 'openai', priceId: 'openai/gpt-4o-mini', planFromSpan: 'team', feature: 'chat', serviceTier: 'priority', estimated: true }) },
      { kind: 'usage', provider: 'openai', record: record({ priced: false, costUsd: { input: '0', cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: '0' }), facts: { layer: 'framework', resourceKey: '\u0000svc\u0000' }, redated: 'late' },
      { kind: 'usage', provider: 'openai', record: record(), facts: { layer: 'provider', resourceKey: 'k', missingUsage: 'estimated', reportedCostUsd: 0.0123 }, redated: 'future', invalid: 'record 0: userId is empty' },
      { kind: 'usage', provider: 'openai', record: record({ outcome: 'error', usage: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 } }), facts: { layer: 'provider', resourceKey: '', missingUsage: 'no_content', reportedCostUsd: 0 } },
      // Not in the fixed layout: sent as objects.
      { kind: 'usage', provider: 'openai', record: record({ toolCalls: { web_search: 2 }, feeCostUsd: '0.02', totalCostUsd: '0.02087825' }) },
      { kind: 'usage', provider: 'anthropic', record: record({ usage: { input: 10, cache_read: 0, cache_write: 5, output: 1, reasoning: 0, cache_write_1h: 5 } }) },
      { kind: 'usage', provider: 'openai', record: record(), facts: { layer: 'provider', resourceKey: 'k', reportedCostUsd: Number.NaN } },
    ];
    const packed = packSpans(spans);
    expect(packed.objects).toHaveLength(3);
    expect(roundTrip(spans)).toStrictEqual(spans);
  });

  it('carries hostile strings and any numbers exactly', () => {
    const span = fc.record({
      provider: hostileString,
      userId: hostileString,
      rawModel: hostileString,
      feature: fc.option(hostileString, { nil: undefined }),
      resourceKey: hostileString,
      message: hostileString,
      input: fc.double(),
      end: fc.double(),
      reported: fc.option(fc.double({ noNaN: true }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(span, { maxLength: 20 }), (xs) => {
        const spans: PreparedSpan[] = xs.flatMap((x): PreparedSpan[] => {
          const r = record({ provider: x.provider, userId: x.userId, rawModel: x.rawModel, endTimeMillis: x.end, usage: { input: x.input, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 } });
          if (x.feature !== undefined) r.feature = x.feature;
          const facts = { layer: 'provider' as const, resourceKey: x.resourceKey, ...(x.reported !== undefined ? { reportedCostUsd: x.reported } : {}) };
          return [{ kind: 'usage', provider: x.provider, record: r, facts, invalid: x.message }, { kind: 'rejected', reason: 'invalid_attribute', message: x.message }];
        });
        expect(roundTrip(spans)).toStrictEqual(spans);
      }),
      { numRuns: 200, seed: 15 },
    );
  });

  it('an empty request', () => {
    expect(roundTrip([])).toStrictEqual([]);
  });
});
