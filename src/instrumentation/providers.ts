import { context, diag, metrics, propagation, trace, type TextMapPropagator } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, getStringListFromEnv, getStringFromEnv, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations, type Instrumentation } from '@opentelemetry/instrumentation';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  serviceInstanceIdDetector,
  type Resource,
  type ResourceDetector,
} from '@opentelemetry/resources';
import { ConsoleMetricExporter, MeterProvider, type MetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { activateGenAiProducers, createWatchedExporters, periodicReader, type ExportWatch } from './exporters.js';
import type { TokenmeterMetricProducer } from './genai-metrics.js';
import { warnOnce } from './warn.js';

/*
 * The OpenTelemetry SDK that `tokenmeter/register` starts, composed from the providers it needs instead of
 * @opentelemetry/sdk-node: NodeSDK also installs the gRPC, Zipkin, Prometheus and logs exporters (about 60 MB
 * and 50 packages in every app that installs tokenmeter). What it read from the environment is read here the
 * same way, for the part tokenmeter supports:
 *   OTEL_SDK_DISABLED, OTEL_LOG_LEVEL, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_NODE_RESOURCE_DETECTORS,
 *   OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = otlp | console | none, OTEL_EXPORTER_OTLP_* with the
 *   http/protobuf and http/json protocols, OTEL_PROPAGATORS = tracecontext | baggage | none, OTEL_TRACES_SAMPLER(_ARG),
 *   OTEL_BSP_*, OTEL_SPAN_* / OTEL_ATTRIBUTE_* limits, OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT.
 * What it does not support (the grpc protocol, the zipkin and prometheus exporters, the b3 and jaeger
 * propagators) is said once on stderr with what to do instead: never a silent nothing. Logs are not exported
 * (tokenmeter emits none); an app that wants its own SDK starts it itself (see the README).
 */

export interface StartedProviders {
  shutdown(): Promise<void>;
  watches: ExportWatch[];
}

type Names = string[];

/** An exporter list as NodeSDK read it: deduplicated, `null` dropped, empty = otlp, `none` with others = otlp. */
function exporterNames(variable: string): Names {
  const names = [...new Set(getStringListFromEnv(variable) ?? [])].filter((s) => s !== 'null');
  if (names.length === 0) return ['otlp'];
  if (names.length > 1 && names.includes('none')) {
    diag.warn(`${variable} contains "none" along with other exporters. Using the default otlp exporter.`);
    return ['otlp'];
  }
  return names;
}

function otlpProtocol(signal: 'TRACES' | 'METRICS'): string {
  return (getStringFromEnv(`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`) ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL'))?.trim() || 'http/protobuf';
}

function warnGrpc(noun: 'spans' | 'metrics', signal: 'TRACES' | 'METRICS'): void {
  const specific = `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`;
  const variable = getStringFromEnv(specific) === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : specific;
  warnOnce(
    `${noun}:grpc`,
    `${variable}=grpc is not ` +
      `supported by tokenmeter/register (no gRPC exporter is installed with it), so ${noun} are not exported and LLM ` +
      `usage is not metered: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and point OTEL_EXPORTER_OTLP_ENDPOINT at ` +
      `the OTLP/HTTP port (4318), or start your own OpenTelemetry SDK with tokenmeterInstrumentations().`,
  );
}

function warnUnsupportedExporter(variable: string, name: string, noun: 'spans' | 'metrics'): void {
  warnOnce(
    `${variable}:${name}`.slice(0, 100),
    `${variable}=${JSON.stringify(name.slice(0, 40))} is not supported by tokenmeter/register (it supports otlp, ` +
      `console and none), so no ${noun} go there: use otlp (an OpenTelemetry Collector can forward to other ` +
      `backends), or start your own OpenTelemetry SDK with tokenmeterInstrumentations().`,
  );
}

function unknownProtocol(protocol: string, signal: 'TRACES' | 'METRICS'): void {
  diag.warn(`Unsupported OTLP ${signal.toLowerCase()} protocol: ${protocol}. Using http/protobuf.`);
}

function traceProcessors(watched: ReturnType<typeof createWatchedExporters>): SpanProcessor[] {
  const names = exporterNames('OTEL_TRACES_EXPORTER');
  if (names[0] === 'none') return [];
  const processors: SpanProcessor[] = [];
  for (const name of names) {
    if (name === 'otlp') {
      const protocol = otlpProtocol('TRACES');
      if (protocol === 'grpc') warnGrpc('spans', 'TRACES');
      else if (watched.traceExporter !== undefined) processors.push(new BatchSpanProcessor(watched.traceExporter));
      else {
        // Only with several exporters (otlp,console): the watched exporters cover the otlp-only configuration.
        if (protocol !== 'http/json' && protocol !== 'http/protobuf') unknownProtocol(protocol, 'TRACES');
        processors.push(new BatchSpanProcessor(protocol === 'http/json' ? new JsonTraceExporter() : new ProtoTraceExporter()));
      }
    } else if (name === 'console') {
      processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
    } else {
      warnUnsupportedExporter('OTEL_TRACES_EXPORTER', name, 'spans');
    }
  }
  return processors;
}

function metricReaders(watched: ReturnType<typeof createWatchedExporters>): MetricReader[] {
  const names = exporterNames('OTEL_METRICS_EXPORTER');
  if (names.includes('none')) return [];
  const readers: MetricReader[] = [];
  for (const name of names) {
    if (name === 'otlp') {
      const protocol = otlpProtocol('METRICS');
      if (protocol === 'grpc') warnGrpc('metrics', 'METRICS');
      else if (watched.metricReaders !== undefined) readers.push(...watched.metricReaders);
      else {
        if (protocol !== 'http/json' && protocol !== 'http/protobuf') unknownProtocol(protocol, 'METRICS');
        readers.push(periodicReader(protocol === 'http/json' ? new JsonMetricExporter() : new ProtoMetricExporter(), process.env));
      }
    } else if (name === 'console') {
      readers.push(periodicReader(new ConsoleMetricExporter(), process.env));
    } else {
      warnUnsupportedExporter('OTEL_METRICS_EXPORTER', name, 'metrics');
    }
  }
  return readers;
}

const DETECTORS: Record<string, ResourceDetector> = {
  env: envDetector,
  host: hostDetector,
  os: osDetector,
  process: processDetector,
  serviceinstance: serviceInstanceIdDetector,
};

/** NodeSDK's resource: the SDK defaults merged with the detected one (env, process, host unless configured). */
function resource(): Resource {
  let detectors: ResourceDetector[] = [envDetector, processDetector, hostDetector];
  const configured = getStringListFromEnv('OTEL_NODE_RESOURCE_DETECTORS');
  if (configured !== undefined && configured.length > 0) {
    if (configured.includes('all')) detectors = Object.values(DETECTORS);
    else if (configured.includes('none')) detectors = [];
    else {
      detectors = configured.flatMap((name) => {
        const detector = DETECTORS[name];
        if (detector === undefined) diag.warn(`Invalid resource detector "${name}" specified in the environment variable OTEL_NODE_RESOURCE_DETECTORS`);
        return detector === undefined ? [] : [detector];
      });
    }
  }
  return defaultResource().merge(detectResources({ detectors }));
}

/** W3C trace context + baggage (the default), or what OTEL_PROPAGATORS names of them; null = none. */
function propagator(): TextMapPropagator | null {
  const names = getStringListFromEnv('OTEL_PROPAGATORS');
  if (names === undefined || names.length === 0) {
    return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
  }
  if (names.includes('none')) return null;
  const propagators: TextMapPropagator[] = [];
  for (const name of new Set(names)) {
    if (name === 'tracecontext') propagators.push(new W3CTraceContextPropagator());
    else if (name === 'baggage') propagators.push(new W3CBaggagePropagator());
    else {
      warnOnce(
        `propagator:${name}`.slice(0, 100),
        `OTEL_PROPAGATORS names ${JSON.stringify(name.slice(0, 40))}, which tokenmeter/register does not install ` +
          `(it supports tracecontext, baggage and none): that trace context is neither read nor sent. Use ` +
          `tracecontext, or start your own OpenTelemetry SDK with tokenmeterInstrumentations().`,
      );
    }
  }
  return new CompositePropagator({ propagators });
}

/** Starts the providers from the environment and registers them and the instrumentations globally. */
export function startProviders(instrumentations: Instrumentation[]): StartedProviders {
  const watched = createWatchedExporters();
  const res = resource();

  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  const textMap = propagator();
  if (textMap !== null) propagation.setGlobalPropagator(textMap);

  let meterProvider: MeterProvider | undefined;
  let producers: TokenmeterMetricProducer[] = [];
  const readers = metricReaders(watched);
  if (readers.length > 0) {
    meterProvider = new MeterProvider({ resource: res, readers });
    metrics.setGlobalMeterProvider(meterProvider);
    producers = activateGenAiProducers(readers);
  }
  let tracerProvider: NodeTracerProvider | undefined;
  const processors = traceProcessors(watched);
  if (processors.length > 0) {
    // The sampler and span limits come from OTEL_TRACES_SAMPLER / OTEL_SPAN_* (read by the provider itself).
    tracerProvider = new NodeTracerProvider({ resource: res, spanProcessors: processors });
    trace.setGlobalTracerProvider(tracerProvider);
  }
  registerInstrumentations({ instrumentations });

  return {
    watches: watched.watches.filter((w) => (w.signal === 'traces' ? tracerProvider !== undefined : meterProvider !== undefined)),
    shutdown: () =>
      Promise.all([tracerProvider?.shutdown(), meterProvider?.shutdown()]).then(() => {
        for (const p of producers) p.deactivate();
      }),
  };
}
