import { diag, metrics, trace } from '@opentelemetry/api';
import { settleEstimatesNow } from './call.js';
import { isReportedExportError, routeDiagConsole, type ExportWatch } from './exporters.js';
import { tokenmeterInstrumentations } from './instrumentation.js';
import type { TokenmeterInstrumentationOptions } from './options.js';
import { startProviders, type StartedProviders } from './providers.js';
import { warnOnce } from './warn.js';

/*
 * What `tokenmeter/register` starts: the OTel SDK's trace and metric providers (providers.ts, what NodeSDK set up,
 * without its gRPC, Zipkin, Prometheus and logs exporters) with tokenmeter's instrumentations only. The exporters,
 * endpoint (default http://localhost:4318), protocol, service name, resource and OTEL_SDK_DISABLED all come
 * from the standard OTEL_* variables; for the default OTLP/HTTP exporters, exporters.ts observes their exports
 * so that their failures are reported (never silent). The flush at exit is
 * bounded (TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS, 2 s): the exporter's retries never hold the process.
 */

let started: StartedProviders | undefined;
let shutdownPromise: Promise<void> | undefined;
let watches: ExportWatch[] = [];

function isDisabled(env = process.env): boolean {
  return (env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true';
}

/** Flushes and stops the SDK started by `tokenmeter/register` (idempotent). */
export function shutdownTokenmeter(): Promise<void> {
  if (started === undefined) return Promise.resolve();
  // Calls still waiting for the tokenizer end now, so that the final export carries them.
  settleEstimatesNow();
  shutdownPromise ??= started.shutdown().catch((err: unknown) => {
    // A failed final export was already reported once by its warning.
    if (isReportedExportError(err)) diag.debug('tokenmeter: SDK shutdown: final export failed', err);
    else diag.error('tokenmeter: SDK shutdown failed', err);
  });
  return shutdownPromise;
}

/** The default of the longest the process waits for the final export at exit (beforeExit, signal, process.exit). */
export const EXIT_FLUSH_TIMEOUT_MILLIS = 2_000;
/** Upper bound of a configured exit flush timeout (10 minutes). */
export const MAX_EXIT_FLUSH_TIMEOUT_MILLIS = 600_000;
export const EXIT_FLUSH_TIMEOUT_ENV = 'TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS';

/** Options of `startTokenmeter`: the instrumentations' options, and how the SDK it starts ends. */
export interface TokenmeterStartOptions extends TokenmeterInstrumentationOptions {
  /**
   * The longest the process waits at exit for the final export of spans and metrics; after it, the process
   * ends and what was not exported is reported on stderr. Whole milliseconds, 0 to 600000. Default: the
   * TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS variable, else 2000.
   */
  exitFlushTimeoutMillis?: number;
}

function validMillis(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_EXIT_FLUSH_TIMEOUT_MILLIS;
}

/** The exit flush bound: the option, else the variable, else the default; an invalid value is warned about once. */
export function resolveExitFlushTimeoutMillis(option: unknown, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) {
    if (typeof option === 'number' && validMillis(option)) return option;
    warnOnce(
      'exit-flush-timeout-option',
      `startTokenmeter({ exitFlushTimeoutMillis: ${String(option).slice(0, 40)} }) is not a whole number of ` +
        `milliseconds from 0 to ${MAX_EXIT_FLUSH_TIMEOUT_MILLIS}; ignoring it.`,
    );
  }
  const raw = env[EXIT_FLUSH_TIMEOUT_ENV];
  if (raw !== undefined && raw.trim() !== '') {
    const value = /^\s*\d{1,9}\s*$/.test(raw) ? Number(raw) : NaN;
    if (validMillis(value)) return value;
    warnOnce(
      'exit-flush-timeout-env',
      `${EXIT_FLUSH_TIMEOUT_ENV}=${JSON.stringify(raw.slice(0, 40))} is not a whole number of milliseconds from 0 ` +
        `to ${MAX_EXIT_FLUSH_TIMEOUT_MILLIS}; using the default, ${EXIT_FLUSH_TIMEOUT_MILLIS} ms.`,
    );
  }
  return EXIT_FLUSH_TIMEOUT_MILLIS;
}

let exitFlushTimeoutMillis = EXIT_FLUSH_TIMEOUT_MILLIS;

/** Resolves true when `promise` settled within `millis`, false when the time ran out first. */
function within(promise: Promise<unknown>, millis: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), millis);
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(settled, settled);
  });
}

/** Says once what the bound cut short: which exports were still pending, how many items, and why if known. */
function reportCutShort(millis: number): void {
  const pending = watches.filter((w) => w.inFlightItems > 0);
  // The last attempt of a pending export failed: that is why it was pending; say it like a failed export.
  for (const w of pending) if (w.lastAttemptError !== undefined) w.report(w.lastAttemptError);
  const what =
    pending.length === 0
      ? 'the final export of spans and metrics'
      : pending
          .map((w) => {
            const items = `${w.inFlightItems} ${w.signal === 'traces' ? 'span' : 'metric point'}${w.inFlightItems === 1 ? '' : 's'}`;
            return `${items} to ${w.url}${w.lastAttemptError === undefined ? ' (no answer from there yet)' : ''}`;
          })
          .join(' and ');
  warnOnce(
    'exit-flush-cut',
    `the process exits ${millis} ms after it began to end, before the final export finished: ${what} not ` +
      `exported. To wait longer, set ${EXIT_FLUSH_TIMEOUT_ENV} (milliseconds).`,
  );
}

/** Flushes and shuts the SDK down at exit, waiting at most the exit flush bound. Resolves true when it finished. */
function shutdownAtExit(): Promise<boolean> {
  const millis = exitFlushTimeoutMillis;
  return within(shutdownTokenmeter(), millis).then((finished) => {
    if (!finished) {
      try {
        reportCutShort(millis);
      } catch (err) {
        diag.debug('tokenmeter: could not report the cut-short export', err);
      }
    }
    return finished;
  });
}

/** Node's own process.exit, kept before any wrapping (see deferProcessExit). */
const nodeExit = process.exit.bind(process);

/** Exports the spans and metrics recorded so far, keeping the SDK running. */
function forceFlush(): Promise<void> {
  settleEstimatesNow();
  // The providers are registered globally (the trace provider behind the API's proxy).
  const proxy = trace.getTracerProvider() as { getDelegate?: () => unknown };
  const tracerProvider = (proxy.getDelegate?.() ?? proxy) as { forceFlush?: () => Promise<void> };
  const meterProvider = metrics.getMeterProvider() as { forceFlush?: () => Promise<void> };
  return Promise.all([tracerProvider.forceFlush?.(), meterProvider.forceFlush?.()])
    .then(() => undefined)
    .catch((err: unknown) => diag.error('tokenmeter: flush failed', err));
}

let exitDeferred = false;

/**
 * After a signal the app handles itself, the app decides when to exit — often with `process.exit()` right after
 * its last request finished. `exit` listeners cannot wait for an export, so from then on `process.exit(code)`
 * first flushes and shuts the SDK down (at most the exit flush bound), then exits with the same code.
 * Only after such a signal: a process that is not shutting down keeps Node's own `process.exit`.
 */
function deferProcessExit(): void {
  if (exitDeferred) return;
  exitDeferred = true;
  const realExit = process.exit.bind(process);
  let exiting = false;
  process.exit = ((code?: number | string | null) => {
    if (code !== undefined && code !== null) process.exitCode = code;
    if (exiting) return undefined as never;
    exiting = true;
    void shutdownAtExit().then(() => realExit());
    return undefined as never;
  }) as typeof process.exit;
}

/*
 * SIGTERM / SIGINT. Without tokenmeter, a signal the app does not handle ends the process, and one it handles is
 * the app's business (it typically drains its requests, then exits). tokenmeter keeps both behaviours:
 * - no other listener: flush and shut down (at most the exit flush bound), then re-raise the signal with
 *   our listener removed, so the process ends by the signal as it would have (exit status 128 + signal number);
 *   a second signal during the flush ends it at once, as Node's default would;
 * - the app listens too: neither shut down nor exit. Flush what has finished so far (in case the app ends
 *   abruptly) and keep exporting the spans of the calls the app drains; the final flush happens when the event
 *   loop empties (`beforeExit`) or when the app calls `process.exit()` (see deferProcessExit).
 */
function flushOnSignal(signal: NodeJS.Signals): void {
  const onSignal = (): void => {
    const appListens = process.listeners(signal).some((l) => l !== onSignal);
    if (appListens) {
      deferProcessExit();
      void forceFlush();
      return;
    }
    process.removeListener(signal, onSignal);
    void shutdownAtExit().then(() => {
      // An app that started listening during the flush decides itself.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  process.on(signal, onSignal);
}

/** Starts the SDK once. Never throws: a failure is logged and the app runs uninstrumented. */
export function startTokenmeter(options?: TokenmeterStartOptions): void {
  if (started !== undefined || isDisabled()) return;
  try {
    exitFlushTimeoutMillis = resolveExitFlushTimeoutMillis(options?.exitFlushTimeoutMillis);
    const { exitFlushTimeoutMillis: _bound, ...instrumentationOptions } = options ?? {};
    // The console diag logger of OTEL_LOG_LEVEL, first, so that what the providers say at start is logged.
    routeDiagConsole();
    started = startProviders(tokenmeterInstrumentations(instrumentationOptions));
    watches = started.watches;
    // A short script ends by emptying its event loop: flush before it exits, so no span is lost. The app has
    // nothing left to run then; what still keeps the loop alive after the bound is the exporter's retrying.
    process.once('beforeExit', () => {
      void shutdownAtExit().then((finished) => {
        if (!finished) nodeExit();
      });
    });
    flushOnSignal('SIGTERM');
    flushOnSignal('SIGINT');
  } catch (err) {
    diag.error('tokenmeter: failed to start the OpenTelemetry SDK; the app runs uninstrumented', err);
  }
}
