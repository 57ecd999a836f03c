/*
 * `node --import tokenmeter/register app.mjs`, or `import 'tokenmeter/register'` as an app's first import.
 * Registers import-in-the-middle's loader hook for the SDK packages only (nothing else is wrapped), starts the
 * SDK, and — when imported from app code, after the app's static imports were already loaded — instruments the
 * already-loaded SDK modules directly.
 */
import { diag } from '@opentelemetry/api';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { instrument } from './instrumentation.js';
import { shutdownTokenmeter, startTokenmeter } from './sdk.js';

const PACKAGES = ['openai', '@anthropic-ai/sdk'];
const disabled = (process.env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true';

function registerLoaderHook(): void {
  try {
    // The hook must be the same import-in-the-middle copy that @opentelemetry/instrumentation uses.
    const req = createRequire(import.meta.url);
    const fromInstrumentation = createRequire(req.resolve('@opentelemetry/instrumentation'));
    const hook = pathToFileURL(fromInstrumentation.resolve('import-in-the-middle/hook.mjs'));
    register(hook, import.meta.url, { data: { include: PACKAGES } });
  } catch (err) {
    diag.error('tokenmeter: could not register the ESM loader hook; ESM imports of the SDKs are not instrumented', err);
  }
}

/** True when this module is being loaded by `--import` (before the app), not by an import in the app. */
function loadedByImportFlag(): boolean {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  // The package specifier, or this file by path (the exporter package's demo imports it so: it is not `tokenmeter`).
  const self = /tokenmeter\/register|[\\/]instrumentation[\\/]register\.js$/;
  return args.some((a, i) => (a === '--import' && self.test(args[i + 1] ?? '')) || (a.startsWith('--import=') && self.test(a)));
}

if (!disabled) {
  registerLoaderHook();
  startTokenmeter();
  if (!loadedByImportFlag()) {
    // The app's static imports were linked before this module ran, so the loader hook never saw them.
    for (const name of PACKAGES) {
      try {
        instrument(await import(name));
      } catch {
        // Not installed: nothing to instrument.
      }
    }
  }
}

export { shutdownTokenmeter };
