import { context, propagation, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { TokenmeterInstrumentation } from '../../src/instrumentation/instrumentation.js';
import type { TokenmeterInstrumentationOptions } from '../../src/instrumentation/options.js';
import { startMockProvider, type MockProvider, type MockProviderOptions } from '../../src/mock-provider/index.js';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** A reader the test pulls from: no timers, no export. */
export class PullReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export interface Harness {
  spans: InMemorySpanExporter;
  reader: PullReader;
  instrumentation: TokenmeterInstrumentation;
  tracerProvider: BasicTracerProvider;
  meterProvider: MeterProvider;
  finished(): ReadableSpan[];
  /** Histogram points of one metric. */
  histogram(name: string): Array<DataPoint<Histogram>>;
  histogramDescriptor(name: string): { unit: string; boundaries: number[] | undefined } | undefined;
  reset(): void;
  shutdown(): Promise<void>;
}

let contextManagerSet = false;

/** Real OTel SDK providers with in-memory exporters, and tokenmeter's instrumentation bound to them. */
export async function createHarness(options: TokenmeterInstrumentationOptions = {}): Promise<Harness> {
  if (!contextManagerSet) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CBaggagePropagator());
    contextManagerSet = true;
  }
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const reader = new PullReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = new TokenmeterInstrumentation(options);
  instrumentation.setTracerProvider(tracerProvider);
  instrumentation.setMeterProvider(meterProvider);
  let lastMetrics: Awaited<ReturnType<PullReader['collect']>> | undefined;
  const collect = async () => {
    lastMetrics = await reader.collect();
  };
  const harness: Harness = {
    spans,
    reader,
    instrumentation,
    tracerProvider,
    meterProvider,
    finished: () => spans.getFinishedSpans(),
    histogram(name) {
      const out: Array<DataPoint<Histogram>> = [];
      for (const sm of lastMetrics?.resourceMetrics.scopeMetrics ?? []) {
        for (const m of sm.metrics) if (m.descriptor.name === name) out.push(...(m.dataPoints as Array<DataPoint<Histogram>>));
      }
      return out;
    },
    histogramDescriptor(name) {
      for (const sm of lastMetrics?.resourceMetrics.scopeMetrics ?? []) {
        for (const m of sm.metrics) {
          if (m.descriptor.name === name) {
            const p = m.dataPoints[0] as DataPoint<Histogram> | undefined;
            return { unit: m.descriptor.unit, boundaries: p?.value.buckets.boundaries };
          }
        }
      }
      return undefined;
    },
    reset() {
      spans.reset();
    },
    async shutdown() {
      instrumentation.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
  (harness as Harness & { collect: () => Promise<void> }).collect = collect;
  return harness;
}

export async function collectMetrics(h: Harness): Promise<void> {
  await (h as Harness & { collect: () => Promise<void> }).collect();
}

export function onlySpan(h: Harness): ReadableSpan {
  const s = h.finished();
  if (s.length !== 1) throw new Error(`expected exactly one finished span, got ${s.length}: ${s.map((x) => x.name).join(', ')}`);
  return s[0];
}

export function usageAttrs(attrs: Attributes): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) if (k.startsWith('gen_ai.usage.') || k.startsWith('tokenmeter.usage.')) out[k] = v;
  return out;
}

export interface HarnessWithMock {
  h: Harness;
  mock: MockProvider;
}

/**
 * For one test file: a harness and a mock provider on port 0, both reset after each test and closed after the
 * file. The fields are set once this helper's `beforeAll` has run (before the file's own `beforeAll`).
 */
export function useHarnessWithMock(mockOptions: MockProviderOptions): HarnessWithMock {
  const s = {} as HarnessWithMock;
  beforeAll(async () => {
    s.h = await createHarness();
    s.mock = await startMockProvider(mockOptions);
  });
  afterAll(async () => {
    await s.mock?.close();
    await s.h?.shutdown();
  });
  afterEach(() => {
    s.h.reset();
    s.mock.reset();
  });
  return s;
}

export { trace };
