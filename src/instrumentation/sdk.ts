import { diag } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
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
  shutdownPromise ??= started.shutdown().catch((err: unknown) => diag.error('tokenmeter: SDK shutdown failed', err));
  return shutdownPromise;
}

function flushOnSignal(signal: NodeJS.Signals): void {
  const onSignal = (): void => {
    void shutdownTokenmeter().finally(() => {
      // Without tokenmeter's listener the signal would have ended the process; keep that unless the app
      // listens itself (then exiting is its decision).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  process.once(signal, onSignal);
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
