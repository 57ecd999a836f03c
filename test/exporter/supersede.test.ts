import { describe, expect, it } from 'vitest';
import { ExporterMetrics } from '../../src/exporter/metrics.js';
import { Pipeline } from '../../src/exporter/pipeline.js';
import type { ExtractResult, PricingPort } from '../../src/exporter/ports.js';
import { ProviderLevelTracker, type FrameworkSpansMode } from '../../src/exporter/supersede.js';
import type { SpanFacts } from '../../src/ingest/types.js';
import type { PriceQuery } from '../../src/pricing/types.js';
import { zeroUsage } from '../../src/usage/usage.js';
import type { UsageRecord } from '../../src/usage/usage-record.js';
import { LedgerDownError, MemoryLedger, SimplePlans } from './fakes.js';

const HOUR = 3_600_000;
const provider = (resourceKey = 'svc-a'): SpanFacts => ({ layer: 'provider', resourceKey });
const framework = (resourceKey = 'svc-a'): SpanFacts => ({ layer: 'framework', resourceKey });

describe('ProviderLevelTracker (ingest.framework_spans)', () => {
  it('auto: a framework span is superseded once a provider-level span for the same provider was seen from the same process, within the window', () => {
    const t = new ProviderLevelTracker({ mode: 'auto', windowMillis: HOUR });
    expect(t.superseded(framework(), 'openai', 0)).toBe(false);
    t.learn(provider(), 'openai', 1000);
    expect(t.superseded(framework(), 'openai', 2000)).toBe(true);
    // Another provider (LangChain over the anthropic SDK, only openai instrumented), another process: billed.
    expect(t.superseded(framework(), 'anthropic', 2000)).toBe(false);
    expect(t.superseded(framework('svc-b'), 'openai', 2000)).toBe(false);
    // A framework span that does not say its provider: any provider-level instrumentation of the process.
    expect(t.superseded(framework(), 'unknown', 2000)).toBe(true);
    // After the window the provider-level instrumentation no longer counts as active.
    expect(t.superseded(framework(), 'openai', 1000 + HOUR + 1)).toBe(false);
    // Provider-level spans are never superseded.
    expect(t.superseded(provider(), 'openai', 2000)).toBe(false);
  });

  it('always bills, never never bills framework spans', () => {
    const always = new ProviderLevelTracker({ mode: 'always', windowMillis: HOUR });
    always.learn(provider(), 'openai', 0);
    expect(always.superseded(framework(), 'openai', 1)).toBe(false);
    const never = new ProviderLevelTracker({ mode: 'never', windowMillis: HOUR });
    expect(never.superseded(framework(), 'openai', 1)).toBe(true);
    expect(never.superseded(provider(), 'openai', 1)).toBe(false);
  });

  it('stays bounded under many processes (hostile resource attributes): the oldest are forgotten', () => {
    const t = new ProviderLevelTracker({ mode: 'auto', windowMillis: HOUR });
    t.learn(provider('first'), 'openai', 0);
    for (let i = 0; i < 20_000; i++) t.learn(provider(`svc-${i}`), 'openai', 1);
    expect(t.superseded(framework('first'), 'openai', 2)).toBe(false);
    expect(t.superseded(framework('svc-19999'), 'openai', 2)).toBe(true);
  });

  it('a repeated sighting (every span of a request) is learnt once; a sighting after another one, or later, is learnt again', () => {
    const t = new ProviderLevelTracker({ mode: 'auto', windowMillis: HOUR });
    for (let i = 0; i < 3; i++) t.learn(provider('a'), 'openai', 1000);
    t.learn(provider('b'), 'openai', 1000);
    // 'a' seen again after 'b' (same instant): re-inserted, so it is now newer than 'b' and survives b's eviction.
    t.learn(provider('a'), 'openai', 1000);
    for (let i = 0; i < 4_998; i++) t.learn(provider(`svc-${i}`), 'openai', 1000);
    // 10,000 keys (2 per sighting): one more process evicts the oldest, 'b', not 'a'.
    t.learn(provider('c'), 'openai', 1000);
    expect(t.superseded(framework('b'), 'openai', 1001)).toBe(false);
    expect(t.superseded(framework('a'), 'openai', 1001)).toBe(true);
    // The same sighting at a later time moves the window on.
    t.learn(provider('c'), 'openai', 1000 + HOUR);
    expect(t.superseded(framework('c'), 'openai', 1000 + 2 * HOUR)).toBe(true);
    expect(t.superseded(framework('a'), 'openai', 1000 + 2 * HOUR)).toBe(false);
  });
});

class NoPricing implements PricingPort {
  priceStrings(query: PriceQuery) {
    return { priced: false as const, provider: query.provider ?? 'openai', model: query.model, reason: 'test', suggestions: [] };
  }
}

function rec(spanId: string): UsageRecord {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId,
    endTimeMillis: Date.UTC(2026, 0, 15),
    provider: 'openai',
    rawModel: 'gpt-4o',
    operation: 'chat',
    usage: { ...zeroUsage(), input: 10 },
    estimated: false,
    userId: 'u1',
    outcome: 'success',
    source: 'openllmetry',
  };
}

function pipelineWith(mode: FrameworkSpansMode) {
  const metrics = new ExporterMetrics({ maxUsers: 10, limitsFor: () => ({}) });
  const ledger = new MemoryLedger();
  const pipeline = new Pipeline<ExtractResult>({
    metrics,
    ledger,
    plans: new SimplePlans(),
    pricing: new NoPricing(),
    extract: (r) => r,
    isUnavailable: (err) => err instanceof LedgerDownError,
    now: () => new Date(Date.UTC(2026, 0, 20)),
    supersede: { mode, windowMillis: HOUR },
  });
  const series = async (name: string) => (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1];
  return { pipeline, series };
}

describe('the pipeline bills each provider call once across instrumentation layers', () => {
  const fw = (id: string): ExtractResult => ({ kind: 'usage', record: rec(id), facts: framework() });
  const sdk = (id: string): ExtractResult => ({ kind: 'usage', record: rec(id), facts: provider() });

  it('auto: in one request the framework span is superseded even when it comes first; counted as outcome="superseded"', async () => {
    const { pipeline, series } = pipelineWith('auto');
    const out = await pipeline.process([fw('00000000000000a1'), sdk('00000000000000a2')]);
    expect([out.committed, out.superseded]).toEqual([1, 1]);
    expect(await series('tokenmeter_ingested_spans_total{outcome="superseded"}')).toBe('1');
    expect(await series('tokenmeter_ingested_spans_total{outcome="priced"}')).toBe('1');
    // A later request from the same process: its framework span is superseded too.
    const later = await pipeline.process([fw('00000000000000a3')]);
    expect([later.committed, later.superseded]).toEqual([0, 1]);
  });

  it('auto: a framework span with no provider-level instrumentation beside it is billed', async () => {
    const { pipeline } = pipelineWith('auto');
    const out = await pipeline.process([fw('00000000000000b1')]);
    expect([out.committed, out.superseded]).toEqual([1, 0]);
  });

  it('always bills both; never bills neither framework span', async () => {
    const always = await pipelineWith('always').pipeline.process([fw('00000000000000c1'), sdk('00000000000000c2')]);
    expect([always.committed, always.superseded]).toEqual([2, 0]);
    const never = await pipelineWith('never').pipeline.process([fw('00000000000000d1')]);
    expect([never.committed, never.superseded]).toEqual([0, 1]);
  });

  it('counts missing-usage spans and span-reported cost once, after the commit, not for a replayed span', async () => {
    const { pipeline, series } = pipelineWith('auto');
    const est: ExtractResult = { kind: 'usage', record: { ...rec('00000000000000e1'), estimated: true, source: 'openinference' }, facts: { ...provider(), missingUsage: 'estimated', reportedCostUsd: 0.25 } };
    await pipeline.process([est]);
    await pipeline.process([est]);
    expect(await series('tokenmeter_missing_usage_spans_total{source="openinference",reason="estimated"}')).toBe('1');
    expect(await series('tokenmeter_reported_cost_usd_total{provider="openai",model="gpt-4o"}')).toBe('0.25');
  });
});
