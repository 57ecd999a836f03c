import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricReaderOptions,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  activeMetricProducers,
  GENAI_HISTOGRAMS,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  TokenmeterMetricProducer,
  type CallMetrics,
} from '../../src/instrumentation/genai-metrics.js';

/*
 * The producer must give exactly what the SDK's histograms give for the same records. Each case records the same
 * calls both ways, with the clock (Date) under the test's control so that even the timestamps must match.
 */

class PullReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** What call.ts does with the SDK's histograms (the path taken while no producer is active). */
function sdkRecorder(temporality: AggregationTemporality) {
  const reader = new PullReader({ aggregationTemporalitySelector: () => temporality } as MetricReaderOptions);
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  const h = {
    tokenUsage: meter.createHistogram(GENAI_HISTOGRAMS.tokenUsage.name, GENAI_HISTOGRAMS.tokenUsage.options),
    operationDuration: meter.createHistogram(GENAI_HISTOGRAMS.operationDuration.name, GENAI_HISTOGRAMS.operationDuration.options),
    timeToFirstChunk: meter.createHistogram(GENAI_HISTOGRAMS.timeToFirstChunk.name, GENAI_HISTOGRAMS.timeToFirstChunk.options),
  };
  return {
    record(m: CallMetrics): void {
      const a = m.attributes();
      h.operationDuration.record(m.durationSeconds, a);
      if (m.timeToFirstChunkSeconds !== undefined) h.timeToFirstChunk.record(m.timeToFirstChunkSeconds, a);
      if (m.inputTokens !== undefined && m.outputTokens !== undefined) {
        const ti = m.attributes();
        if (m.estimated) ti['tokenmeter.usage.estimated'] = true;
        ti['gen_ai.token.type'] = 'input';
        h.tokenUsage.record(m.inputTokens, ti);
        const to = m.attributes();
        if (m.estimated) to['tokenmeter.usage.estimated'] = true;
        to['gen_ai.token.type'] = 'output';
        h.tokenUsage.record(m.outputTokens, to);
      }
    },
    collect: () => reader.collect(),
    shutdown: () => provider.shutdown(),
  };
}

/** Metric data in a comparable form: data points in a stable order (the order of series carries no meaning). */
function normalize(result: Pick<CollectionResult, 'resourceMetrics'>): unknown {
  return result.resourceMetrics.scopeMetrics.map((sm) => ({
    scope: { name: sm.scope.name, version: sm.scope.version, schemaUrl: sm.scope.schemaUrl },
    metrics: sm.metrics.map((m: MetricData) => ({
      ...m,
      dataPoints: [...(m.dataPoints as Array<DataPoint<Histogram>>)].sort((a, b) => (sortedJson(a.attributes) < sortedJson(b.attributes) ? -1 : 1)),
    })),
  }));
}

function sortedJson(a: Attributes): string {
  return JSON.stringify(Object.keys(a).sort().map((k) => [k, a[k]]));
}

function call(over: Partial<CallMetrics> & { model?: string; plan?: string; error?: string; responseModel?: string }): CallMetrics {
  const model = over.model ?? 'gpt-4o-mini';
  const attrs = (): Attributes => {
    const a: Attributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': model };
    if (over.responseModel !== undefined) a['gen_ai.response.model'] = over.responseModel;
    if (over.plan !== undefined) a['tokenmeter.plan'] = over.plan;
    if (over.error !== undefined) a['error.type'] = over.error;
    return a;
  };
  return {
    key: JSON.stringify([model, over.responseModel, over.plan, over.error]),
    attributes: attrs,
    durationSeconds: over.durationSeconds ?? 0.25,
    timeToFirstChunkSeconds: over.timeToFirstChunkSeconds,
    inputTokens: 'inputTokens' in over ? over.inputTokens : 120,
    outputTokens: 'outputTokens' in over ? over.outputTokens : 30,
    estimated: over.estimated ?? false,
  };
}

/** A mix of calls: bucket boundaries exactly, zero, beyond the last bucket, streams, errors, estimates, plans. */
function batchOfCalls(round: number): CallMetrics[] {
  return [
    call({ responseModel: 'gpt-4o-mini-2024-07-18', durationSeconds: 0.01, inputTokens: 1, outputTokens: 4 }),
    call({ responseModel: 'gpt-4o-mini-2024-07-18', durationSeconds: 81.92, inputTokens: 67108864, outputTokens: 0 }),
    call({ responseModel: 'gpt-4o-mini-2024-07-18', durationSeconds: 200, inputTokens: 100_000_000, outputTokens: 5 }),
    call({ responseModel: 'gpt-4o-mini-2024-07-18', durationSeconds: 0.333 + round, timeToFirstChunkSeconds: 0.021, plan: 'pro' }),
    call({ durationSeconds: 0.5, error: 'APIConnectionError', inputTokens: undefined, outputTokens: undefined }),
    call({ model: 'claude-haiku-4-5', responseModel: 'claude-haiku-4-5', durationSeconds: 1.5, timeToFirstChunkSeconds: 0, estimated: true, plan: 'free' }),
    call({ model: 'claude-haiku-4-5', responseModel: 'claude-haiku-4-5', durationSeconds: 0, plan: 'free' }),
  ];
}

afterEach(() => {
  vi.useRealTimers();
});

describe('TokenmeterMetricProducer gives what the SDK histograms give', () => {
  for (const temporality of [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]) {
    const name = temporality === AggregationTemporality.CUMULATIVE ? 'cumulative' : 'delta';
    it(`${name}: the same metric data over several collections, timestamps included`, async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2026-12-03T12:00:00.123Z'));
      const sdk = sdkRecorder(temporality);
      const producer = new TokenmeterMetricProducer({ aggregationTemporality: temporality });
      const both = (m: CallMetrics): void => {
        sdk.record(m);
        producer.record(m);
      };
      // Round 1: every kind of call; round 2: a subset (delta: series absent from a collection); round 3: a series
      // that was absent comes back (delta: its start is its first record, not the last collection).
      const rounds: CallMetrics[][] = [batchOfCalls(0), batchOfCalls(1).slice(0, 2), batchOfCalls(2).slice(3)];
      for (let r = 0; r < rounds.length; r++) {
        for (const m of rounds[r]) {
          vi.advanceTimersByTime(7);
          both(m);
        }
        vi.advanceTimersByTime(1000);
        const expected = normalize(await sdk.collect());
        const got = normalize(await producer.collect());
        expect(got).toEqual(expected);
        expect((expected as unknown[]).length).toBe(1);
      }
      // A collection with nothing new: cumulative repeats the totals, delta reports nothing.
      vi.advanceTimersByTime(1000);
      expect(normalize(await producer.collect())).toEqual(normalize(await sdk.collect()));
      await sdk.shutdown();
    });
  }

  for (const temporality of [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]) {
    it(`the cardinality limit (${temporality === AggregationTemporality.DELTA ? 'delta' : 'cumulative'}): series beyond 1999 in one collection go to the overflow series, as in the SDK`, async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2026-12-03T12:00:00Z'));
      const sdk = sdkRecorder(temporality);
      const producer = new TokenmeterMetricProducer({ aggregationTemporality: temporality });
      for (let i = 0; i < 2100; i++) {
        const m = call({ model: `model-${i}`, durationSeconds: i / 100, inputTokens: i, outputTokens: 1 });
        sdk.record(m);
        producer.record(m);
      }
      const expected = normalize(await sdk.collect());
      expect(normalize(await producer.collect())).toEqual(expected);
      const duration = (expected as Array<{ metrics: MetricData[] }>)[0].metrics.find((m) => m.descriptor.name === 'gen_ai.client.operation.duration')!;
      expect(duration.dataPoints.some((p) => p.attributes['otel.metric.overflow'] === true)).toBe(true);
      // The next collection counts anew: earlier series are recorded again, new ones still overflow.
      for (let i = 1990; i < 2010; i++) {
        const m = call({ model: `model-${i}`, durationSeconds: 1, inputTokens: 1, outputTokens: 1 });
        sdk.record(m);
        producer.record(m);
      }
      vi.advanceTimersByTime(1000);
      expect(normalize(await producer.collect())).toEqual(normalize(await sdk.collect()));
      // Delta: the overflow series again, after a collection that had it (its start is that collection's time).
      for (let i = 0; i < 2100; i++) {
        const m = call({ model: `model-${i}`, durationSeconds: 2, inputTokens: 2, outputTokens: 2 });
        sdk.record(m);
        producer.record(m);
      }
      vi.advanceTimersByTime(1000);
      expect(normalize(await producer.collect())).toEqual(normalize(await sdk.collect()));
      await sdk.shutdown();
    });
  }

  it('attribute sets beyond the cardinality limit take no memory of their own (hostile model names)', async () => {
    const producer = new TokenmeterMetricProducer({ cardinalityLimit: 10 });
    for (let i = 0; i < 5000; i++) producer.record(call({ model: `model-${i}` }));
    const held = (producer as unknown as { slots: Map<string, unknown> }).slots.size;
    expect(held).toBeLessThanOrEqual(9);
    const { resourceMetrics } = await producer.collect();
    const duration = resourceMetrics.scopeMetrics[0].metrics.find((m) => m.descriptor.name === 'gen_ai.client.operation.duration')!;
    expect(duration.dataPoints).toHaveLength(10);
    expect(duration.dataPoints.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(5000);
  });

  it('values the SDK drops or truncates: negative, NaN, fractional token counts', async () => {
    const warn = vi.fn();
    const { diag, DiagLogLevel } = await import('@opentelemetry/api');
    diag.setLogger({ warn, error: warn, info: () => {}, debug: () => {}, verbose: () => {} }, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    try {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2026-12-03T12:00:00Z'));
      const sdk = sdkRecorder(AggregationTemporality.CUMULATIVE);
      const producer = new TokenmeterMetricProducer();
      for (const m of [
        call({ durationSeconds: -1, inputTokens: -5, outputTokens: 2.7 }),
        call({ durationSeconds: Number.NaN, inputTokens: 3, outputTokens: Number.NaN }),
        call({ durationSeconds: Number.POSITIVE_INFINITY, inputTokens: 3.2, outputTokens: Number.POSITIVE_INFINITY }),
      ]) {
        sdk.record(m);
        producer.record(m);
      }
      expect(normalize(await producer.collect())).toEqual(normalize(await sdk.collect()));
      expect(warn).toHaveBeenCalled();
      await sdk.shutdown();
    } finally {
      diag.disable();
    }
  });

  it('a producer given to a reader: its scope and metrics reach the reader next to the SDK own', async () => {
    const producer = new TokenmeterMetricProducer();
    const reader = new PullReader({ metricProducers: [producer] });
    const provider = new MeterProvider({ readers: [reader] });
    provider.getMeter('app').createCounter('app.requests').add(1);
    producer.record(call({}));
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    expect(resourceMetrics.scopeMetrics.map((s) => s.scope.name)).toEqual(['app', 'tokenmeter']);
    expect(resourceMetrics.scopeMetrics[1].metrics.map((m) => m.descriptor.name)).toEqual(['gen_ai.client.token.usage', 'gen_ai.client.operation.duration']);
    await provider.shutdown();
  });

  it('is used by calls only once activated, and no longer once deactivated', () => {
    const producer = new TokenmeterMetricProducer();
    expect(activeMetricProducers()).not.toContain(producer);
    producer.activate();
    expect(activeMetricProducers()).toContain(producer);
    producer.deactivate();
    expect(activeMetricProducers()).not.toContain(producer);
  });
});
