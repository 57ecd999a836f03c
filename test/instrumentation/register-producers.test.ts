import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { AggregationTemporality, AggregationType, ConsoleMetricExporter, MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { activateGenAiProducers, periodicReader } from '../../src/instrumentation/exporters.js';
import { activeMetricProducers } from '../../src/instrumentation/genai-metrics.js';

/*
 * tokenmeter/register's readers carry tokenmeter's GenAI producer, with each exporter's temporality, and calls
 * use the producers only when every reader has one: a reader whose exporter wants another histogram aggregation
 * gets the SDK's histograms (and then so do all readers, so that no reader loses the metrics).
 */

const saved = { ...process.env };
const providers: MeterProvider[] = [];

afterEach(async () => {
  for (const p of activeMetricProducers()) p.deactivate();
  for (const p of providers.splice(0)) await p.shutdown();
  process.env = { ...saved };
});

/** Builds readers as providers.ts does, under `env`, and activates their producers. */
function readersUnder(env: Record<string, string>, kinds: Array<'otlp' | 'console' | 'otlp-exponential'>) {
  Object.assign(process.env, env);
  const exporter = (k: string) =>
    k === 'console'
      ? new ConsoleMetricExporter()
      : k === 'otlp'
        ? new ProtoMetricExporter()
        : new ProtoMetricExporter({ aggregationPreference: () => ({ type: AggregationType.EXPONENTIAL_HISTOGRAM }) });
  const readers = kinds.map((k) => periodicReader(exporter(k), process.env));
  providers.push(new MeterProvider({ readers }));
  return { readers, producers: activateGenAiProducers(readers) };
}

describe("tokenmeter/register's GenAI metric producers", () => {
  it('one per reader, cumulative by default, and calls record into them', () => {
    const { producers } = readersUnder({}, ['otlp', 'console']);
    expect(producers).toHaveLength(2);
    expect(producers.map((p) => p.aggregationTemporality)).toEqual([AggregationTemporality.CUMULATIVE, AggregationTemporality.CUMULATIVE]);
    expect(activeMetricProducers()).toEqual(producers);
  });

  it("with the exporter's temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta)", () => {
    const { producers } = readersUnder({ OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta' }, ['otlp']);
    expect(producers.map((p) => p.aggregationTemporality)).toEqual([AggregationTemporality.DELTA]);
  });

  it('none when an exporter aggregates histograms otherwise: the SDK histograms record for every reader', () => {
    const { producers } = readersUnder({}, ['console', 'otlp-exponential']);
    expect(producers).toEqual([]);
    expect(activeMetricProducers()).toEqual([]);
  });

  it('none without readers', () => {
    expect(activateGenAiProducers([])).toEqual([]);
    expect(activeMetricProducers()).toEqual([]);
  });
});
