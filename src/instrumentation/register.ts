/*
 * `node --import tokenmeter/register app.mjs`, or `import 'tokenmeter/register'` as an app's first import.
 * Registers import-in-the-middle's loader hook for the SDK packages only (nothing else is wrapped), starts the
 * SDK, and — when imported from app code, after the app's static imports were already loaded — instruments the
 * already-loaded SDK modules directly.
 */
import { diag } from '@opentelemetry/api';
import { readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { watchUnmeteredAiSdk } from './ai-sdk.js';
import { instrumentSdk } from './instrumentation.js';
import { shutdownTokenmeter, startTokenmeter } from './sdk.js';
import type { SdkPackage } from './supported.js';

const PACKAGES: SdkPackage[] = ['openai', '@anthropic-ai/sdk', '@google/genai', '@aws-sdk/client-bedrock-runtime', 'ai'];
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

/** The version of the installed package `import(name)` loads from here (its package.json), if readable. */
function installedVersion(name: string): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === name) return typeof pkg.version === 'string' ? pkg.version : undefined;
      } catch {
        // No package.json at this level: keep going up.
      }
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  } catch {
    return undefined;
  }
}

if (!disabled) {
  registerLoaderHook();
  startTokenmeter();
  if (!loadedByImportFlag()) {
    // The app's static imports were linked before this module ran, so the loader hook never saw them.
    // `ai`'s entry points are the exports of the app's own (frozen) ES module instance: they cannot be metered from
    // here, and loading it again would only meter another copy. Say so if the app calls it.
    watchUnmeteredAiSdk();
    for (const name of PACKAGES) {
      if (name === 'ai') continue;
      let mod: unknown;
      try {
        mod = await import(name);
      } catch {
        continue; // Not installed: nothing to instrument.
      }
      instrumentSdk(name, mod, installedVersion(name));
    }
  }
}

export { shutdownTokenmeter };
