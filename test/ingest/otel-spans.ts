/**
 * Real spans from the OTel JS SDK (BasicTracerProvider + InMemorySpanExporter) and the bodies the real OTLP
 * exporters send for them (otlp-transformer's ProtobufTraceSerializer / JsonTraceSerializer).
 */
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

export interface SpanSpec {
  name: string;
  attributes: Attributes;
  kind?: SpanKind;
  error?: string;
  scope?: string;
}

export function makeSpans(specs: SpanSpec[], resource: Attributes = { 'service.name': 'test-app' }): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  for (const spec of specs) {
    const tracer = provider.getTracer(spec.scope ?? 'tokenmeter-test', '1.2.3');
    const span = tracer.startSpan(spec.name, { kind: spec.kind ?? SpanKind.CLIENT, attributes: spec.attributes });
    if (spec.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: spec.error });
    span.end();
  }
  return exporter.getFinishedSpans();
}

export function protobufBody(spans: ReadableSpan[]): Buffer {
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  if (bytes === undefined) throw new Error('serializer returned nothing');
  return Buffer.from(bytes);
}

export function jsonBody(spans: ReadableSpan[]): Buffer {
  const bytes = JsonTraceSerializer.serializeRequest(spans);
  if (bytes === undefined) throw new Error('serializer returned nothing');
  return Buffer.from(bytes);
}

export function hrTimeToNanos(t: [number, number]): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}
