import { diag, DiagConsoleLogger, type DiagLogger } from '@opentelemetry/api';
import {
  diagLogLevelFromString,
  ExportResultCode,
  getStringFromEnv,
  getStringListFromEnv,
  loggingErrorHandler,
  setGlobalErrorHandler,
  type ExportResult,
} from '@opentelemetry/core';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { AggregationTemporality, AggregationType, InstrumentType, PeriodicExportingMetricReader, type MetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import dc from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { TokenmeterMetricProducer } from './genai-metrics.js';
import { warnOnce } from './warn.js';

/*
 * "Never silent" for the SDK that `tokenmeter/register` starts: when its spans or metrics cannot be exported,
 * the user is told once per kind of failure (stderr + diag, through warnOnce), with the endpoint and the fix.
 *
 * The hook: for the default configuration (OTLP over HTTP, unless the OTEL_* variables name other exporters or
 * gRPC) we build the exporters NodeSDK built — same classes, constructed without options so they read the same
 * variables — and providers.ts hands them to the SDK's providers. Their `export` is wrapped on the instance only
 * to observe each batch's ExportResult; what is exported, and when, is unchanged.
 * Other configurations (console, several exporters) get unwatched exporters from providers.ts.
 *
 * The final ExportResult comes after the exporter's retries (up to OTEL_EXPORTER_OTLP_TIMEOUT, 10 s), and its
 * error for a retryable HTTP status carries no status. So each HTTP attempt to the export URLs is also observed
 * through Node's public `http.client.*` diagnostics channels: the last attempt's outcome names the status, and
 * says why an export was still pending when the bounded flush at exit gave up on it.
 */

export type Signal = 'traces' | 'metrics';

const NOUN: Record<Signal, string> = { traces: 'spans', metrics: 'metrics' };
const DEFAULT_EXPORT_TIMEOUT_MILLIS = 10_000;

/** What the failure warnings name: the URL the OTLP/HTTP exporter posts to, resolved as the exporter does. */
export function otlpHttpUrl(signal: Signal, env: NodeJS.ProcessEnv = process.env): string {
  const fallback = `http://localhost:4318/v1/${signal}`;
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v);
  const specific = nonEmpty(env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`]);
  if (specific !== undefined) {
    try {
      return new URL(specific).href;
    } catch {
      return fallback; // the exporter ignores an unparsable URL too (and says so through diag)
    }
  }
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (base === undefined) return fallback;
  try {
    return new URL(`${base.endsWith('/') ? base : `${base}/`}v1/${signal}`).href;
  } catch {
    return fallback;
  }
}

/** The exporter's own per-attempt-series timeout (OTEL_EXPORTER_OTLP_{TRACES,METRICS}_TIMEOUT, then the shared one). */
export function otlpTimeoutMillis(signal: Signal, env: NodeJS.ProcessEnv = process.env): number {
  for (const name of [`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_TIMEOUT`, 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const value = Number(raw);
    if (Number.isFinite(value) && value > 0) return value;
  }
  return DEFAULT_EXPORT_TIMEOUT_MILLIS;
}

export interface FailureReport {
  /** One warning per key for the life of the process. */
  key: string;
  message: string;
}

function codeOf(error: unknown): unknown {
  try {
    return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  } catch {
    return undefined; // a throwing getter
  }
}

function messageOf(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error ? error.message : String(error);
  } catch {
    text = 'unknown error';
  }
  // An error text can carry anything a server answered: keep the line one short line.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach the terminal
  text = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/**
 * The warning for one failed export (or, at exit, for the last failed attempt): what failed, where, and the fix.
 * Never throws, whatever the error is.
 */
export function describeExportFailure(signal: Signal, url: string, error: unknown, timeoutMillis = DEFAULT_EXPORT_TIMEOUT_MILLIS): FailureReport {
  const noun = NOUN[signal];
  const lost = `until then LLM usage is not metered (these ${noun} are dropped)`;
  const code = codeOf(error);
  if (code === 'ECONNREFUSED') {
    return {
      key: `${signal}:refused`,
      message:
        `cannot export ${noun} to ${url}: connection refused. Is the tokenmeter exporter (or your OpenTelemetry ` +
        `Collector) running there? If it listens elsewhere, set OTEL_EXPORTER_OTLP_ENDPOINT to its base URL ` +
        `(e.g. http://host:4318); ${lost}.`,
    };
  }
  if (typeof code === 'number' && Number.isInteger(code) && code >= 100 && code <= 599) {
    const at = `the exporter at ${url} rejected ${noun} with HTTP ${code}`;
    let fix: string;
    if (code === 401 || code === 403) {
      fix =
        `it requires the ingest token: set OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <token> in the app's ` +
        `environment, with the exporter's auth.ingest_token (TOKENMETER_INGEST_TOKEN)`;
    } else if (code === 404 || code === 405) {
      fix =
        `nothing receives OTLP at that path: set OTEL_EXPORTER_OTLP_ENDPOINT to the exporter's base URL (the SDK ` +
        `appends /v1/${signal}), or OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT to the full URL`;
    } else if (code === 413) {
      fix = 'a batch is larger than the exporter accepts: lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE or raise the exporter\'s limit';
    } else if (code === 429 || code === 502 || code === 503 || code === 504) {
      fix =
        `it kept answering so after the SDK's retries (OTEL_EXPORTER_OTLP_TIMEOUT, ${timeoutMillis} ms): it is ` +
        `overloaded or cannot store data (tokenmeter's exporter answers 503 while its ledger is down); check its /readyz and its log`;
    } else if (code >= 500) {
      fix = 'the exporter failed on the request: check its log';
    } else {
      fix =
        'check that the endpoint is an OTLP/HTTP receiver that accepts OTEL_EXPORTER_OTLP_PROTOCOL ' +
        '(http/protobuf or http/json) and read its answer in the exporter\'s log';
    }
    return { key: `${signal}:http-${code}`, message: `${at}: ${fix}; ${lost}.` };
  }
  const message = messageOf(error);
  if (message === 'Export failed with retryable status') {
    return {
      key: `${signal}:retryable`,
      message:
        `the exporter at ${url} kept answering a retryable status (429, 502, 503 or 504) until the export timeout ` +
        `(OTEL_EXPORTER_OTLP_TIMEOUT, ${timeoutMillis} ms): it is overloaded or cannot store data (tokenmeter's ` +
        `exporter answers 503 while its ledger is down); check its /readyz and its log; ${lost}.`,
    };
  }
  if (message === 'Request timed out') {
    return {
      key: `${signal}:timeout`,
      message:
        `the exporter at ${url} did not answer within OTEL_EXPORTER_OTLP_TIMEOUT (${timeoutMillis} ms): check that ` +
        `it is reachable and not overloaded, or raise OTEL_EXPORTER_OTLP_TIMEOUT; ${lost}.`,
    };
  }
  if (message === 'Concurrent export limit reached') {
    return {
      key: `${signal}:backlog`,
      message:
        `too many exports of ${noun} to ${url} are waiting for an answer at once (the exporter is slow or ` +
        `unreachable, see the other warnings), so further batches are dropped; ${lost}.`,
    };
  }
  if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) {
    return {
      key: `${signal}:net-${code}`,
      message:
        `cannot export ${noun} to ${url}: ${message}. Check OTEL_EXPORTER_OTLP_ENDPOINT (host, port, http or ` +
        `https) and the network between the app and the exporter; ${lost}.`,
    };
  }
  return { key: `${signal}:other`, message: `could not export ${noun} to ${url}: ${message}; ${lost}.` };
}

/** Export counts of one signal's exporter: what is in flight, and the last HTTP attempt's failure. */
export class ExportWatch {
  /** Items (spans, metric data points) handed to the exporter whose export has not finished. */
  inFlightItems = 0;
  /** Items whose export failed for good. */
  failedItems = 0;
  /** The last failed HTTP attempt (a Node error, or `{ code: status }`), cleared by a successful one. */
  lastAttemptError: unknown = undefined;
  private warned = false;

  constructor(
    readonly signal: Signal,
    readonly url: string,
    readonly timeoutMillis: number,
  ) {}

  /** Called with each finished export. */
  finished(items: number, result: ExportResult): void {
    this.inFlightItems = Math.max(0, this.inFlightItems - items);
    if (result.code === ExportResultCode.SUCCESS) {
      this.lastAttemptError = undefined;
      if (this.warned) {
        warnOnce(`${this.signal}:recovered`, `exporting ${NOUN[this.signal]} to ${this.url} works again (what failed before it was not exported).`);
      }
      return;
    }
    this.failedItems += items;
    // A retryable status ends in an error without the status; the attempts said which one it was.
    const error =
      codeOf(result.error) === undefined && this.lastAttemptError !== undefined && messageOf(result.error) === 'Export failed with retryable status'
        ? this.lastAttemptError
        : result.error;
    this.report(error);
    markReported(result.error, this.signal);
  }

  /** Warns (once per kind) about `error`. */
  report(error: unknown): void {
    const { key, message } = describeExportFailure(this.signal, this.url, error, this.timeoutMillis);
    warnOnce(key, message);
    this.warned = true;
  }
}

/*
 * OTel's processors report every failed batch themselves through the global error handler (a diag.error per
 * batch when OTEL_LOG_LEVEL is set). A failure tokenmeter already warned about goes to diag.debug instead, so
 * the user reads it once; everything else keeps OTel's own handling.
 */
const reportedErrors = new WeakSet<object>();
const reportedMessages = new Set<string>();

function markReported(error: unknown, signal: Signal): void {
  if (typeof error === 'object' && error !== null) reportedErrors.add(error);
  // The metric reader wraps the exporter's error in a new Error with this text (sdk-metrics).
  if (signal === 'metrics' && reportedMessages.size < 100) {
    reportedMessages.add(`PeriodicExportingMetricReader: metrics export failed (error ${safeString(error)})`);
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '';
  }
}

/** True for an error (or the metric reader's wrapper of one) that a warning already reported. */
export function isReportedExportError(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && reportedErrors.has(error)) return true;
  return error instanceof Error && reportedMessages.has(error.message);
}

let errorHandlerInstalled = false;

function installErrorHandler(): void {
  if (errorHandlerInstalled) return;
  errorHandlerInstalled = true;
  const otel = loggingErrorHandler();
  setGlobalErrorHandler((ex) => {
    if (isReportedExportError(ex)) diag.debug('tokenmeter: export failure (already reported once on stderr)', ex);
    else otel(ex);
  });
}

/*
 * With OTEL_LOG_LEVEL set, diag is logged to the console (as NodeSDK did); warnOnce writes its line to stderr and
 * to diag, so the same line would appear twice. This console logger drops tokenmeter's warning lines (already on
 * stderr) and logs everything else as NodeSDK's did. An app that installs its own diag logger replaces it.
 */
export function routeDiagConsole(env: NodeJS.ProcessEnv = process.env): void {
  const level = env.OTEL_LOG_LEVEL;
  if (level === undefined || level.trim() === '') return;
  const console = new DiagConsoleLogger();
  const skip = (args: unknown[]): boolean => typeof args[0] === 'string' && args[0].startsWith('tokenmeter: warning: ');
  const logger: DiagLogger = {
    error: (...args) => void (skip(args) || console.error(...(args as [string]))),
    warn: (...args) => void (skip(args) || console.warn(...(args as [string]))),
    info: (...args) => console.info(...(args as [string])),
    debug: (...args) => console.debug(...(args as [string])),
    verbose: (...args) => console.verbose(...(args as [string])),
  };
  diag.setLogger(logger, { logLevel: diagLogLevelFromString(level), suppressOverrideMessage: true });
}

/*
 * Per-attempt outcomes of requests to the watched URLs. The channels fire for every HTTP request of the process;
 * the handler costs one Map lookup when some export is in flight and nothing otherwise.
 */
const byUrl = new Map<string, ExportWatch>();
let channelsSubscribed = false;

function watchOf(request: ClientRequest): ExportWatch | undefined {
  try {
    if (byUrl.size === 0) return undefined;
    const host = request.getHeader('host');
    if (typeof host !== 'string') return undefined;
    const watch = byUrl.get(`${request.protocol}//${host}${request.path}`);
    return watch !== undefined && watch.inFlightItems > 0 ? watch : undefined;
  } catch {
    return undefined;
  }
}

function subscribeChannels(): void {
  if (channelsSubscribed) return;
  channelsSubscribed = true;
  try {
    dc.subscribe('http.client.request.error', (message) => {
      const { request, error } = message as { request: ClientRequest; error: unknown };
      const watch = watchOf(request);
      if (watch !== undefined) watch.lastAttemptError = error;
    });
    dc.subscribe('http.client.response.finish', (message) => {
      const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
      const watch = watchOf(request);
      if (watch === undefined) return;
      const status = response.statusCode ?? 0;
      watch.lastAttemptError = status >= 300 ? { code: status } : undefined;
    });
  } catch (err) {
    diag.debug('tokenmeter: cannot observe export attempts (no http diagnostics channels)', err);
  }
}

interface ExportingExporter<T> {
  export(items: T, resultCallback: (result: ExportResult) => void): void;
}

/** Observes each export's result on this exporter instance; passes items and results through unchanged. */
function observe<T>(exporter: ExportingExporter<T>, watch: ExportWatch, count: (items: T) => number): void {
  const original = exporter.export;
  exporter.export = function (this: unknown, items: T, resultCallback: (result: ExportResult) => void): void {
    let n = 0;
    try {
      n = count(items);
      watch.inFlightItems += n;
    } catch {
      // Counting is ours; it never stops an export.
    }
    let done = false;
    const callback = (result: ExportResult): void => {
      if (!done) {
        done = true;
        try {
          watch.finished(n, result);
        } catch (err) {
          diag.debug('tokenmeter: export watch failed', err);
        }
      }
      resultCallback(result);
    };
    try {
      original.call(exporter, items, callback);
    } catch (err) {
      watch.inFlightItems = Math.max(0, watch.inFlightItems - n);
      throw err;
    }
  };
}

function spanCount(spans: unknown): number {
  return Array.isArray(spans) ? spans.length : 0;
}

function metricPointCount(resourceMetrics: unknown): number {
  const scopes = (resourceMetrics as { scopeMetrics?: { metrics?: { dataPoints?: unknown[] }[] }[] }).scopeMetrics ?? [];
  let n = 0;
  for (const scope of scopes) for (const metric of scope.metrics ?? []) n += metric.dataPoints?.length ?? 0;
  return n;
}

function positiveNumberFromEnv(name: string, env: NodeJS.ProcessEnv): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (Number.isNaN(value)) {
    diag.warn(`Unknown value ${JSON.stringify(raw.slice(0, 40))} for ${name}, expected a number, using defaults`);
    return undefined;
  }
  if (value <= 0) {
    diag.warn(`${name} (${value}) is invalid, expected number greater than 0, using default.`);
    return undefined;
  }
  return value;
}

/** The metric reader NodeSDK built from the environment (same interval, timeout and clamping), on `exporter`. */
export function periodicReader(exporter: PushMetricExporter, env: NodeJS.ProcessEnv): MetricReader {
  const interval = positiveNumberFromEnv('OTEL_METRIC_EXPORT_INTERVAL', env);
  const timeout = positiveNumberFromEnv('OTEL_METRIC_EXPORT_TIMEOUT', env);
  const exportIntervalMillis = interval ?? 60_000;
  let exportTimeoutMillis = timeout ?? 30_000;
  if (exportTimeoutMillis > exportIntervalMillis) {
    const message = `OTEL_METRIC_EXPORT_TIMEOUT (${timeout ?? '30000, default'}) is greater than OTEL_METRIC_EXPORT_INTERVAL (${interval ?? '60000, default'}). Clamping timeout to interval value.`;
    if (timeout !== undefined && interval !== undefined) diag.warn(message);
    else diag.info(message);
    exportTimeoutMillis = exportIntervalMillis;
  }
  const producer = genAiProducerFor(exporter);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis, exportTimeoutMillis, metricProducers: producer === undefined ? [] : [producer] });
  if (producer !== undefined) producerByReader.set(reader, producer);
  return reader;
}

const producerByReader = new WeakMap<MetricReader, TokenmeterMetricProducer>();

/**
 * The GenAI histograms' producer for a reader on `exporter` (genai-metrics.ts), not yet active: with the
 * exporter's temporality, and only when it aggregates histograms the default way (explicit buckets from the
 * instruments' advice), which is what the producer gives. Otherwise undefined: that reader needs the SDK's own.
 */
function genAiProducerFor(exporter: PushMetricExporter): TokenmeterMetricProducer | undefined {
  try {
    const aggregation = exporter.selectAggregation?.(InstrumentType.HISTOGRAM);
    if (aggregation !== undefined && aggregation.type !== AggregationType.DEFAULT) return undefined;
    const temporality = exporter.selectAggregationTemporality?.(InstrumentType.HISTOGRAM) ?? AggregationTemporality.CUMULATIVE;
    return new TokenmeterMetricProducer({ aggregationTemporality: temporality });
  } catch (err) {
    diag.debug('tokenmeter: could not read the metric exporter\'s aggregation; GenAI metrics go through the SDK', err);
    return undefined;
  }
}

/**
 * Makes tokenmeter's calls record their GenAI histograms into the readers' producers instead of the SDK's
 * histograms, when every reader carries one (a reader without would lose them). Returns the producers it
 * activated (none, or one per reader).
 */
export function activateGenAiProducers(readers: MetricReader[]): TokenmeterMetricProducer[] {
  const producers: TokenmeterMetricProducer[] = [];
  for (const r of readers) {
    const p = producerByReader.get(r);
    if (p === undefined) return [];
    producers.push(p);
  }
  for (const p of producers) p.activate();
  return producers;
}

export interface WatchedExporters {
  /** For the BatchSpanProcessor (which reads OTEL_BSP_* itself). */
  traceExporter?: JsonTraceExporter | ProtoTraceExporter;
  /** For the MeterProvider. */
  metricReaders?: MetricReader[];
  watches: ExportWatch[];
}

/** Only "otlp" (or unset): other exporters, or several, are built by providers.ts without a watch. */
function onlyOtlp(list: string[] | undefined): boolean {
  const names = [...new Set(list ?? [])].filter((s) => s !== 'null');
  return names.length === 0 || (names.length === 1 && names[0] === 'otlp');
}

/**
 * The exporters NodeSDK built from the environment, observed; `{ watches: [] }` for configurations that
 * providers.ts builds unwatched. Also routes OTel's own reports of export failures (see above). Never throws.
 */
export function createWatchedExporters(env: NodeJS.ProcessEnv = process.env): WatchedExporters {
  const result: WatchedExporters = { watches: [] };
  try {
    installErrorHandler();
    subscribeChannels();
    if (onlyOtlp(getStringListFromEnv('OTEL_TRACES_EXPORTER'))) {
      const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
      const exporter = protocol === 'http/json' ? new JsonTraceExporter() : protocol === 'http/protobuf' ? new ProtoTraceExporter() : undefined;
      if (exporter !== undefined) {
        const watch = new ExportWatch('traces', otlpHttpUrl('traces', env), otlpTimeoutMillis('traces', env));
        observe(exporter, watch, spanCount);
        result.traceExporter = exporter;
        result.watches.push(watch);
      }
    }
    const metricExporters = getStringListFromEnv('OTEL_METRICS_EXPORTER');
    if (onlyOtlp(metricExporters)) {
      const protocol = (getStringFromEnv('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL'))?.trim() || 'http/protobuf';
      const exporter = protocol === 'http/json' ? new JsonMetricExporter() : protocol === 'http/protobuf' ? new ProtoMetricExporter() : undefined;
      if (exporter !== undefined) {
        const watch = new ExportWatch('metrics', otlpHttpUrl('metrics', env), otlpTimeoutMillis('metrics', env));
        observe(exporter, watch, metricPointCount);
        result.metricReaders = [periodicReader(exporter, env)];
        result.watches.push(watch);
      }
    }
    for (const watch of result.watches) byUrl.set(watch.url, watch);
  } catch (err) {
    diag.debug('tokenmeter: could not set up watched exporters; unwatched ones are built', err);
    return { watches: [] };
  }
  return result;
}
