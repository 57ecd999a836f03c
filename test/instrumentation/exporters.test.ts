/**
 * The export-failure warnings of src/instrumentation/exporters.ts, in process: which warning each error gets
 * (errors shaped as the OTLP exporters' OTLPExporterError, Node network errors, and hostile values; the real
 * ones come from real servers in test/e2e/register-export-failures.test.ts),
 * the endpoint it names, and the one-line-per-kind rule.
 */
import { ExportResultCode } from '@opentelemetry/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  describeExportFailure,
  ExportWatch,
  isReportedExportError,
  otlpHttpUrl,
  otlpTimeoutMillis,
} from '../../src/instrumentation/exporters.js';
import { resolveExitFlushTimeoutMillis } from '../../src/instrumentation/sdk.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';

const URL_ = 'http://127.0.0.1:4318/v1/traces';

/** The shape of @opentelemetry/otlp-exporter-base's OTLPExporterError (a transitive package, not imported here). */
class OTLPExporterError extends Error {
  override name = 'OTLPExporterError';
  constructor(
    message: string,
    readonly code?: number,
    readonly data?: string,
  ) {
    super(message);
  }
}

function netError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('describeExportFailure', () => {
  it.each([
    [netError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:4318'), 'traces:refused', /cannot export spans to http:\/\/127\.0\.0\.1:4318\/v1\/traces: connection refused\. Is the tokenmeter exporter .* set OTEL_EXPORTER_OTLP_ENDPOINT/],
    [new OTLPExporterError('Unauthorized', 401, '{"error":"missing token"}'), 'traces:http-401', /rejected spans with HTTP 401: it requires the ingest token: set OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <token>/],
    [new OTLPExporterError('Forbidden', 403, ''), 'traces:http-403', /HTTP 403: it requires the ingest token/],
    [new OTLPExporterError('Not Found', 404, ''), 'traces:http-404', /HTTP 404: nothing receives OTLP at that path: .*appends \/v1\/traces.*OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/],
    [new OTLPExporterError('Payload Too Large', 413, ''), 'traces:http-413', /HTTP 413: a batch is larger than the exporter accepts: lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE/],
    [new OTLPExporterError('Unsupported Media Type', 415, ''), 'traces:http-415', /HTTP 415: check that the endpoint is an OTLP\/HTTP receiver that accepts OTEL_EXPORTER_OTLP_PROTOCOL/],
    [new OTLPExporterError('Internal Server Error', 500, 'boom'), 'traces:http-500', /HTTP 500: the exporter failed on the request: check its log/],
    [{ code: 503 }, 'traces:http-503', /HTTP 503: it kept answering so after the SDK's retries \(OTEL_EXPORTER_OTLP_TIMEOUT, 10000 ms\)/],
    [new OTLPExporterError('Export failed with retryable status'), 'traces:retryable', /kept answering a retryable status \(429, 502, 503 or 504\)/],
    [new Error('Request timed out'), 'traces:timeout', /did not answer within OTEL_EXPORTER_OTLP_TIMEOUT \(10000 ms\)/],
    [new Error('Concurrent export limit reached'), 'traces:backlog', /too many exports of spans/],
    [netError('ENOTFOUND', 'getaddrinfo ENOTFOUND exporter.invalid'), 'traces:net-ENOTFOUND', /cannot export spans to .*: getaddrinfo ENOTFOUND exporter\.invalid\. Check OTEL_EXPORTER_OTLP_ENDPOINT/],
    [netError('ECONNRESET', 'socket hang up'), 'traces:net-ECONNRESET', /socket hang up/],
  ])('%s → %s', (error, key, text) => {
    const report = describeExportFailure('traces', URL_, error);
    expect(report.key).toBe(key);
    expect(report.message).toMatch(text);
    expect(report.message).toContain(URL_);
    expect(report.message).toMatch(/until then LLM usage is not metered \(these spans are dropped\)\.$/);
  });

  it('names metrics for the metrics exporter', () => {
    const report = describeExportFailure('metrics', 'http://h:4318/v1/metrics', new OTLPExporterError('Unauthorized', 401));
    expect(report.key).toBe('metrics:http-401');
    expect(report.message).toMatch(/^the exporter at http:\/\/h:4318\/v1\/metrics rejected metrics with HTTP 401/);
  });

  it('never throws, and keeps hostile errors to one short line', () => {
    const throwing = {
      get code(): never {
        throw new Error('getter');
      },
      toString(): never {
        throw new Error('toString');
      },
    };
    const hostile: unknown[] = [
      undefined,
      null,
      'plain string',
      42,
      Symbol('s'),
      throwing,
      { code: 'not a code; rm -rf /' },
      { code: 99999 },
      { code: Number.NaN },
      { code: 401.5 },
      new Error(`line1\nline2\r\u001b[31mred\u0000${'x'.repeat(10_000)}`),
    ];
    for (const error of hostile) {
      const report = describeExportFailure('traces', URL_, error);
      // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
      expect(report.message).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(report.message.length).toBeLessThan(600);
      expect(report.key).toMatch(/^traces:(other|net-[A-Z0-9_]+)$/);
    }
  });
});

describe('otlpHttpUrl and otlpTimeoutMillis (as the OTLP/HTTP exporters resolve them)', () => {
  it.each([
    [{}, 'traces', 'http://localhost:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, 'traces', 'http://collector:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://x.example/otlp/' }, 'metrics', 'https://x.example/otlp/v1/metrics'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:1', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:2/custom' }, 'traces', 'http://b:2/custom'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:1', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:2/custom' }, 'metrics', 'http://a:1/v1/metrics'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '   ' }, 'traces', 'http://localhost:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, 'traces', 'http://localhost:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '::::' }, 'traces', 'http://localhost:4318/v1/traces'],
  ] as const)('%j %s → %s', (env, signal, url) => {
    expect(otlpHttpUrl(signal, env)).toBe(url);
  });

  it('reads the signal timeout, then the shared one, ignoring invalid values', () => {
    expect(otlpTimeoutMillis('traces', {})).toBe(10_000);
    expect(otlpTimeoutMillis('traces', { OTEL_EXPORTER_OTLP_TIMEOUT: '300' })).toBe(300);
    expect(otlpTimeoutMillis('traces', { OTEL_EXPORTER_OTLP_TIMEOUT: '300', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '700' })).toBe(700);
    expect(otlpTimeoutMillis('metrics', { OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '700' })).toBe(10_000);
    for (const bad of ['-1', '0', 'soon', 'Infinity']) expect(otlpTimeoutMillis('traces', { OTEL_EXPORTER_OTLP_TIMEOUT: bad })).toBe(10_000);
  });
});

describe('ExportWatch', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());

  it('warns once per kind however many batches fail, counts what was lost, and says once when it works again', () => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    const watch = new ExportWatch('traces', URL_, 10_000);
    watch.inFlightItems = 30;
    const refused = netError('ECONNREFUSED', 'connect ECONNREFUSED');
    for (let i = 0; i < 10; i++) watch.finished(2, { code: ExportResultCode.FAILED, error: refused });
    watch.finished(2, { code: ExportResultCode.FAILED, error: new OTLPExporterError('Unauthorized', 401) });
    watch.finished(2, { code: ExportResultCode.SUCCESS });
    watch.finished(2, { code: ExportResultCode.FAILED, error: new OTLPExporterError('Unauthorized', 401) });
    watch.finished(2, { code: ExportResultCode.SUCCESS });
    expect(watch.inFlightItems).toBe(2);
    expect(watch.failedItems).toBe(24);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/connection refused/);
    expect(lines[1]).toMatch(/HTTP 401/);
    expect(lines[2]).toBe(`tokenmeter: warning: exporting spans to ${URL_} works again (what failed before it was not exported).`);
    // OTel's own report of the same failure is recognised (and goes to diag.debug instead of diag.error).
    expect(isReportedExportError(refused)).toBe(true);
    expect(isReportedExportError(new Error('something else'))).toBe(false);
  });

  it('names the status of a retryable answer from the last attempt (the final error carries none)', () => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    const watch = new ExportWatch('metrics', 'http://h/v1/metrics', 300);
    watch.lastAttemptError = { code: 503 };
    const error = new OTLPExporterError('Export failed with retryable status');
    watch.finished(1, { code: ExportResultCode.FAILED, error });
    expect(lines).toEqual([expect.stringMatching(/rejected metrics with HTTP 503: it kept answering so after the SDK's retries \(OTEL_EXPORTER_OTLP_TIMEOUT, 300 ms\)/)]);
    // The metric reader wraps the exporter's error in its own; that one is recognised too.
    expect(isReportedExportError(new Error(`PeriodicExportingMetricReader: metrics export failed (error ${String(error)})`))).toBe(true);
  });
});

describe('resolveExitFlushTimeoutMillis', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());
  const ENV = 'TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS';

  it('takes the option, else the variable, else 2000', () => {
    restore = captureWarnings([]);
    expect(resolveExitFlushTimeoutMillis(undefined, {})).toBe(2_000);
    expect(resolveExitFlushTimeoutMillis(undefined, { [ENV]: ' 750 ' })).toBe(750);
    expect(resolveExitFlushTimeoutMillis(0, { [ENV]: '750' })).toBe(0);
    expect(resolveExitFlushTimeoutMillis(600_000, {})).toBe(600_000);
  });

  it.each(['soon', '-1', '2.5', '1e3', '600001', '0x10', '9'.repeat(400), '١٢٣'])('%j in the variable: one warning naming it, the default applies', (value) => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    expect(resolveExitFlushTimeoutMillis(undefined, { [ENV]: value })).toBe(2_000);
    expect(resolveExitFlushTimeoutMillis(undefined, { [ENV]: value })).toBe(2_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tokenmeter: warning: TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS=".{1,40}" is not a whole number of milliseconds from 0 to 600000; using the default, 2000 ms\.$/);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 600_001, '500', null, {}])('option %j: one warning naming it, then the variable applies', (value) => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    expect(resolveExitFlushTimeoutMillis(value, { [ENV]: '900' })).toBe(900);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tokenmeter: warning: startTokenmeter\(\{ exitFlushTimeoutMillis: .{1,40} \}\) is not a whole number of milliseconds from 0 to 600000; ignoring it\.$/);
  });
});
