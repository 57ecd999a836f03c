import { describe, expect, it } from 'vitest';
import { ExporterMetrics } from '../../src/exporter/metrics.js';
import { LedgerUnavailable, Pipeline, toLedgerRecord } from '../../src/exporter/pipeline.js';
import type { PricingPort } from '../../src/exporter/ports.js';
import type { CommitResult, LedgerRecord } from '../../src/ledger/types.js';
import { PriceBook } from '../../src/pricing/index.js';
import type { PriceQuery } from '../../src/pricing/types.js';
import { zeroUsage } from '../../src/usage/usage.js';
import type { UsageRecord } from '../../src/usage/usage-record.js';
import { LedgerDownError, MemoryLedger, SimplePlans } from './fakes.js';

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

describe('toLedgerRecord prices from the span facts: fast mode and regional processing', () => {
  const facts = (over: Partial<UsageRecord>): UsageRecord => ({ ...record(undefined), ...over });
  it.each<[string, Partial<UsageRecord>, PriceQuery['speed'], PriceQuery['processing']]>([
    ['nothing said', {}, undefined, undefined],
    ['Anthropic fast mode', { provider: 'anthropic', rawModel: 'claude-opus-4-6', speed: 'fast' }, 'fast', undefined],
    ['standard speed', { provider: 'anthropic', rawModel: 'claude-opus-4-6', speed: 'standard' }, undefined, undefined],
    ['Anthropic inference_geo us', { provider: 'anthropic', rawModel: 'claude-opus-4-6', inferenceGeo: 'us' }, undefined, 'regional'],
    ['OpenAI data-residency host', { serverAddress: 'eu.api.openai.com' }, undefined, 'regional'],
    ['OpenAI global host', { serverAddress: 'api.openai.com' }, undefined, 'global'],
    ['Bedrock geo profile', { provider: 'aws.bedrock', rawModel: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0' }, undefined, 'regional'],
    ['Bedrock global profile', { provider: 'aws.bedrock', rawModel: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' }, undefined, 'global'],
  ])('%s', (_name, over, speed, processing) => {
    const pricing = new RecordingPricing();
    toLedgerRecord(facts(over), new SimplePlans(), pricing);
    expect(pricing.queries[0]!.speed).toBe(speed);
    expect(pricing.queries[0]!.processing).toBe(processing);
  });

  it('with the shipped catalog: a Bedrock geo profile pays the 10% regional premium, global does not', () => {
    const book = PriceBook.load();
    const usage = { ...zeroUsage(), input: 100_000, output: 100_000 };
    const at = Date.UTC(2026, 10, 24);
    const cost = (rawModel: string, extra: Partial<UsageRecord> = {}) =>
      toLedgerRecord(facts({ provider: 'aws.bedrock', rawModel, usage, endTimeMillis: at, ...extra }), new SimplePlans(), book).totalCostUsd;
    expect(cost('global.anthropic.claude-sonnet-4-5-20250929-v1:0')).toBe('1.8');
    expect(cost('us.anthropic.claude-sonnet-4-5-20250929-v1:0')).toBe('1.98');
    // Opus 4.6 on the first-party API in fast mode with inference_geo us: (5 + 25) x 6 x 1.1 per Mtok, 0.1 Mtok each.
    expect(cost('claude-opus-4-6', { provider: 'anthropic', speed: 'fast', inferenceGeo: 'us' })).toBe('19.8');
  });
});

/** MemoryLedger that tells the caller its records are durable before it resolves (as the journal ledger does). */
class DurableFirstLedger extends MemoryLedger {
  readonly events: string[] = [];
  callOnDurable = true;
  override async commit(records: LedgerRecord[], onDurable?: () => void): Promise<CommitResult> {
    const result = await super.commit(records);
    if (this.callOnDurable && onDurable) {
      this.events.push('durable');
      onDurable();
    }
    this.events.push('resolved');
    return result;
  }
}

describe('Pipeline acknowledgement', () => {
  const setup = (ledger: MemoryLedger) => {
    const metrics = new ExporterMetrics({ maxUsers: 10, limitsFor: () => ({}) });
    const pipeline = new Pipeline<UsageRecord | 'ignore' | 'reject'>({
      metrics,
      ledger,
      plans: new SimplePlans(),
      pricing: new RecordingPricing(),
      extract: (s) => (s === 'ignore' ? { kind: 'ignored' } : s === 'reject' ? { kind: 'rejected', reason: 'invalid_usage', message: 'bad' } : { kind: 'usage', record: s }),
      isUnavailable: (err) => err instanceof LedgerDownError,
      now: () => new Date(Date.UTC(2026, 0, 20)),
    });
    return { metrics, pipeline };
  };
  const span = (i: number): UsageRecord => ({ ...record(undefined), spanId: `b7ad6b71692033${(16 + i).toString(16)}` });
  const priced = async (metrics: ExporterMetrics) => (await metrics.registry.metrics()).match(/tokenmeter_ingested_spans_total\{outcome="priced"\} (\d+)/)?.[1];

  it('acknowledges once, when the ledger says the records are durable, before the metrics move', async () => {
    const ledger = new DurableFirstLedger();
    const { metrics, pipeline } = setup(ledger);
    const acks: { rejected: number; messages: string[]; pricedAtAck: Promise<string | undefined> }[] = [];
    const outcome = await pipeline.process([span(1), 'reject', span(2), 'ignore'], (o) => {
      ledger.events.push('ack');
      acks.push({ ...o, pricedAtAck: priced(metrics) });
    });
    expect(ledger.events).toEqual(['durable', 'ack', 'resolved']);
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ rejected: 1, messages: ['bad'] });
    expect(await acks[0].pricedAtAck).toBe('0');
    expect(await priced(metrics)).toBe('2');
    expect(outcome).toMatchObject({ rejected: 1, committed: 2, duplicates: 0, ignored: 1 });
  });

  it('acknowledges after the commit resolves when the ledger does not call back, and without a commit', async () => {
    const ledger = new DurableFirstLedger();
    ledger.callOnDurable = false;
    const { pipeline } = setup(ledger);
    let acks = 0;
    await pipeline.process([span(3)], () => {
      expect(ledger.events).toEqual(['resolved']);
      acks++;
    });
    await pipeline.process(['ignore', 'reject'], () => acks++);
    expect(acks).toBe(2);
  });

  it('never acknowledges a failed commit', async () => {
    const ledger = new DurableFirstLedger();
    ledger.down = true;
    const { pipeline } = setup(ledger);
    let acks = 0;
    await expect(pipeline.process([span(4)], () => acks++)).rejects.toBeInstanceOf(LedgerUnavailable);
    expect(acks).toBe(0);
  });
});
