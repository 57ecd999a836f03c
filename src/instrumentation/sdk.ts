import { diag, metrics, trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { settleEstimatesNow } from './call.js';
import { tokenmeterInstrumentations } from './instrumentation.js';
import type { TokenmeterInstrumentationOptions } from './options.js';

/*
 * What `tokenmeter/register` starts: an OTel NodeSDK with tokenmeter's instrumentations only. The exporters,
 * endpoint (default http://localhost:4318), protocol, service name, resource and OTEL_SDK_DISABLED all come
 * from the standard OTEL_* variables, which NodeSDK reads itself.
 */

let started: NodeSDK | undefined;
let shutdownPromise: Promise<void> | undefined;

function isDisabled(env = process.env): boolean {
  return (env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true';
}

/** Flushes and stops the SDK started by `tokenmeter/register` (idempotent). */
export function shutdownTokenmeter(): Promise<void> {
  if (started === undefined) return Promise.resolve();
  // Calls still waiting for the tokenizer end now, so that the final export carries them.
  settleEstimatesNow();
  shutdownPromise ??= started.shutdown().catch((err: unknown) => diag.error('tokenmeter: SDK shutdown failed', err));
  return shutdownPromise;
}

/** The longest a signal or an app's `process.exit()` waits for the final export before the process ends. */
export const EXIT_FLUSH_TIMEOUT_MILLIS = 5_000;

function within(promise: Promise<unknown>, millis: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, millis);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

/** Exports the spans and metrics recorded so far, keeping the SDK running. */
function forceFlush(): Promise<void> {
  settleEstimatesNow();
  // NodeSDK has no forceFlush; it registered its providers globally (the trace provider behind the API's proxy).
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
 * first flushes and shuts the SDK down (at most EXIT_FLUSH_TIMEOUT_MILLIS), then exits with the same code.
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
    void within(shutdownTokenmeter(), EXIT_FLUSH_TIMEOUT_MILLIS).then(() => realExit());
    return undefined as never;
  }) as typeof process.exit;
}

/*
 * SIGTERM / SIGINT. Without tokenmeter, a signal the app does not handle ends the process, and one it handles is
 * the app's business (it typically drains its requests, then exits). tokenmeter keeps both behaviours:
 * - no other listener: flush and shut down (at most EXIT_FLUSH_TIMEOUT_MILLIS), then re-raise the signal with
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
    void within(shutdownTokenmeter(), EXIT_FLUSH_TIMEOUT_MILLIS).then(() => {
      // An app that started listening during the flush decides itself.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  process.on(signal, onSignal);
}

/** Starts the SDK once. Never throws: a failure is logged and the app runs uninstrumented. */
export function startTokenmeter(options?: TokenmeterInstrumentationOptions): void {
  if (started !== undefined || isDisabled()) return;
  try {
    const sdk = new NodeSDK({ instrumentations: tokenmeterInstrumentations(options) });
    sdk.start();
    started = sdk;
    // A short script ends by emptying its event loop: flush before it exits, so no span is lost.
    process.once('beforeExit', () => {
      void shutdownTokenmeter();
    });
    flushOnSignal('SIGTERM');
    flushOnSignal('SIGINT');
  } catch (err) {
    diag.error('tokenmeter: failed to start the OpenTelemetry SDK; the app runs uninstrumented', err);
  }
}
