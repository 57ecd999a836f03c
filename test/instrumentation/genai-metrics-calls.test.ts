import Anthropic from '@anthropic-ai/sdk';
import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, Histogram, MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenmeterMetricProducer } from '../../src/instrumentation/genai-metrics.js';
import { instrument, withUser } from '../../src/instrumentation/index.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { useHarnessWithMock } from './harness.js';

/*
 * Real SDK calls against the mock provider record the same GenAI metrics through tokenmeter's producer as
 * through the SDK's histograms: the same metrics, descriptors, attribute sets and token values (durations differ
 * between two runs of the same calls, so for them the series and their counts are compared).
 */

const env = useHarnessWithMock({ seed: 3 });

beforeAll(() => {
  instrument(OpenAI);
  instrument(Anthropic);
});

const messages = [{ role: 'user' as const, content: 'Say something short.' }];

/** Every kind of call: streams and not, both providers, a plan, a failure; against a fresh mock (same answers). */
async function scenario(): Promise<void> {
  const mock = await startMockProvider({ seed: 3, createdSeconds: 1_700_000_000 });
  try {
    await calls(mock);
  } finally {
    await mock.close();
  }
}

async function calls(mock: MockProvider): Promise<void> {
  const openai = new OpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 });
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 20 });
  await withUser({ id: 'u1', plan: 'pro' }, async () => {
    for await (const chunk of await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })) void chunk;
    await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 20, messages });
  });
  for await (const event of await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 20, messages, stream: true })) void event;
  await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
  mock.failNext(1, 500);
  await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toThrow();
}

/** The attribute set, sorted; each run has its own mock, so its port is only checked to be there. */
function sortedJson(a: Attributes): string {
  return JSON.stringify(
    Object.keys(a)
      .sort()
      .map((k) => [k, k === 'server.port' && typeof a[k] === 'number' ? 'a port' : a[k]]),
  );
}

/** The tokenmeter scope's metrics, their points by attribute set; durations reduced to their counts. */
function view(rm: ResourceMetrics): unknown {
  const scopes = rm.scopeMetrics.filter((s) => s.scope.name === 'tokenmeter');
  expect(scopes).toHaveLength(1);
  return {
    scope: { name: scopes[0].scope.name, version: scopes[0].scope.version },
    metrics: scopes[0].metrics.map((m: MetricData) => ({
      descriptor: m.descriptor,
      aggregationTemporality: m.aggregationTemporality,
      dataPointType: m.dataPointType,
      points: (m.dataPoints as Array<DataPoint<Histogram>>)
        .map((p) => ({
          attributes: sortedJson(p.attributes),
          value: m.descriptor.name === 'gen_ai.client.token.usage' ? p.value : { count: p.value.count, boundaries: p.value.buckets.boundaries },
        }))
        .sort((a, b) => (a.attributes < b.attributes ? -1 : 1)),
    })),
  };
}

describe('GenAI metrics of real calls: the producer and the SDK histograms agree', () => {
  it('the same metrics, attribute sets and token values either way', async () => {
    const { h } = env;
    await scenario();
    const viaSdk = view((await h.reader.collect()).resourceMetrics);

    const producer = tokenmeterMetricProducer();
    try {
      await scenario();
      const viaProducer = view((await producer.collect()).resourceMetrics);
      expect(viaProducer).toEqual(viaSdk);
      // Nothing more went through the SDK's histograms while the producer was active (cumulative: unchanged).
      expect(view((await h.reader.collect()).resourceMetrics)).toEqual(viaSdk);
    } finally {
      producer.deactivate();
    }
    const tokens = (viaSdk as { metrics: Array<{ descriptor: { name: string }; points: Array<{ attributes: string }> }> }).metrics.find(
      (m) => m.descriptor.name === 'gen_ai.client.token.usage',
    )!;
    // Sanity of the scenario itself: plan, server and token type all made distinct series.
    expect(tokens.points.some((p) => p.attributes.includes('"tokenmeter.plan","pro"'))).toBe(true);
    expect(tokens.points.some((p) => p.attributes.includes('"gen_ai.token.type","output"'))).toBe(true);
  });
  it('finds each call\'s series among more attribute sets than its key memo holds, interleaved', async () => {
    // GenAiCall.metricKey memoises the last 8 sets' keys: 12 models x 3 plans, each set met twice in a row in
    // each of two rounds, so that sets come back after being evicted and neighbours differ in one value only.
    async function manySets(): Promise<void> {
      const mock = await startMockProvider({ seed: 3, createdSeconds: 1_700_000_000 });
      try {
        const anthropic = new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 });
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < 36; i++) {
            const model = `claude-haiku-${i % 12}`;
            // Twice in a row: the second finds the first's key in the memo.
            for (let k = 0; k < 2; k++) {
              await withUser({ id: 'u', plan: `plan-${Math.floor(i / 12)}` }, () => anthropic.messages.create({ model, max_tokens: 20, messages }));
            }
          }
        }
      } finally {
        await mock.close();
      }
    }
    type View = { metrics: Array<{ descriptor: { name: string }; points: Array<{ attributes: string; value: { count: number } }> }> };
    // The SDK's reader is cumulative over this file: only this test's series (its plans) are compared.
    const own = (v: unknown): View => {
      const w = v as View;
      const metrics = w.metrics.map((m) => ({ ...m, points: m.points.filter((p) => p.attributes.includes('"tokenmeter.plan","plan-')) }));
      return { ...w, metrics: metrics.filter((m) => m.points.length > 0) };
    };
    const { h } = env;
    await manySets();
    const viaSdk = own(view((await h.reader.collect()).resourceMetrics));
    const producer = tokenmeterMetricProducer();
    try {
      await manySets();
      expect(own(view((await producer.collect()).resourceMetrics))).toEqual(viaSdk);
    } finally {
      producer.deactivate();
    }
    const duration = viaSdk.metrics.find((m) => m.descriptor.name === 'gen_ai.client.operation.duration')!;
    // 36 sets (12 models x 3 plans), each recorded four times.
    expect(duration.points).toHaveLength(36);
    expect(duration.points.every((p) => p.value.count === 4)).toBe(true);
  });
});
