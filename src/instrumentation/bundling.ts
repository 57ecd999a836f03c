import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import { warnOnce } from './warn.js';

/*
 * Bundling mistakes fail silently: a bundler (Next.js, webpack, esbuild) that copies the SDKs or tokenmeter into
 * the app's bundle leaves the copies tokenmeter/register patched unused. Calls then succeed with zero spans, or
 * `withUser` sets its user in one copy while another records the calls (billed to anonymous). tokenmeter tells
 * the user once, with the fix, and shares `withUser`'s storage between copies so attribution survives them.
 *
 * The state lives on globalThis under a registered symbol, so every copy of tokenmeter in the process (any
 * version that knows this key) sees the same counters and the same AsyncLocalStorage.
 */

/** The process-wide state every tokenmeter copy shares. Only ever extended with optional fields. */
interface ProcessState {
  /** Where each loaded copy of tokenmeter's scope module lives (its module URL). */
  copies: string[];
  scopeStorage: AsyncLocalStorage<unknown>;
  /** `withUser` scopes entered, instrumented calls started, and those of them that ran inside a `withUser`. */
  withUserScopes: number;
  instrumentedCalls: { openai: number; anthropic: number };
  callsInUserScope: number;
  /** SDK requests seen on the wire (undici's diagnostics channel), by SDK family. */
  sdkRequests: { openai: number; anthropic: number };
}

const KEY = Symbol.for('tokenmeter.process-state.v1');

function processState(): ProcessState {
  const g = globalThis as unknown as Record<symbol, ProcessState | undefined>;
  let s = g[KEY];
  if (s === undefined) {
    s = {
      copies: [],
      scopeStorage: new AsyncLocalStorage<unknown>(),
      withUserScopes: 0,
      instrumentedCalls: { openai: 0, anthropic: 0 },
      callsInUserScope: 0,
      sdkRequests: { openai: 0, anthropic: 0 },
    };
    g[KEY] = s;
  }
  return s;
}

const state = processState();

const FIX =
  'In Next.js, keep them out of the server bundle: serverExternalPackages: ["tokenmeter", "openai", "@anthropic-ai/sdk"] ' +
  'in next.config (with webpack or esbuild, mark them external), and load tokenmeter with ' +
  "`await import('tokenmeter/register')` in instrumentation.ts's register().";

/**
 * Registers one copy of tokenmeter (its scope module's URL) and returns the AsyncLocalStorage `withUser` uses,
 * the same one for every copy. A second copy is reported once.
 */
export function registerCopy(moduleUrl: string): AsyncLocalStorage<unknown> {
  state.copies.push(moduleUrl);
  if (state.copies.length > 1) {
    warnOnce(
      'second-copy',
      `a second copy of tokenmeter was loaded in this process (${state.copies.join(' and ')}): a bundler copied it ` +
        'into your app next to the one in node_modules. withUser() attribution is shared between the copies, but ' +
        `each copy patches only the SDK copies it loads itself. ${FIX}`,
    );
  }
  return state.scopeStorage;
}

/** Counts a `withUser` scope. */
export function countWithUser(): void {
  state.withUserScopes++;
}

/** How many withUser scopes and how many calls with none in sight make the check worth a warning. */
export const SCOPE_CHECK_MIN = 10;

/** Counts an instrumented call starting, inside a `withUser` scope or not. */
export function countInstrumentedCall(provider: string, inUserScope: boolean): void {
  if (provider === 'anthropic') state.instrumentedCalls.anthropic++;
  else state.instrumentedCalls.openai++;
  if (inUserScope) {
    state.callsInUserScope++;
    return;
  }
  const calls = state.instrumentedCalls.openai + state.instrumentedCalls.anthropic;
  if (state.callsInUserScope === 0 && state.withUserScopes >= SCOPE_CHECK_MIN && calls >= SCOPE_CHECK_MIN) {
    warnOnce(
      'with-user-unseen',
      `withUser() ran ${state.withUserScopes} times, but none of the ${calls} LLM calls since started inside one: ` +
        'they are billed to no user. Start each call inside the function you pass to withUser (await it there), ' +
        'not before it or from a queue or pool that runs it later; if withUser is imported from a bundled copy of ' +
        `tokenmeter, ${FIX}`,
    );
  }
}

const SDK_PATHS = /\/(chat\/completions|responses|embeddings|messages)(\?|$)/;

function header(headers: unknown, name: string): string | undefined {
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    }
    return undefined;
  }
  if (typeof headers === 'string') {
    const m = new RegExp(`(?:^|\\r\\n)${name}:\\s*([^\\r\\n]*)`, 'i').exec(headers);
    return m?.[1];
  }
  return undefined;
}

/** One request on the wire (undici's `undici:request:create`): an SDK call tokenmeter may not have seen. */
function onRequest(message: unknown): void {
  // Only while this copy's instrumentation is on: a disabled one counts no calls.
  if (!enabled) return;
  try {
    const request = (message as { request?: { path?: unknown; headers?: unknown } }).request;
    if (typeof request?.path !== 'string' || !SDK_PATHS.test(request.path)) return;
    const agent = header(request.headers, 'user-agent') ?? '';
    const family = /^OpenAI\/JS/.test(agent) ? 'openai' : /^Anthropic\/JS/.test(agent) ? 'anthropic' : undefined;
    if (family === undefined) return;
    state.sdkRequests[family]++;
    // A patched SDK method counts its call synchronously, before the SDK sends anything.
    if (state.instrumentedCalls[family] > 0) return;
    const pkg = family === 'openai' ? 'openai' : '@anthropic-ai/sdk';
    const version = header(request.headers, 'x-stainless-package-version');
    warnOnce(
      `unpatched-${family}`,
      `${pkg}${version ? ` ${version}` : ''} sent a request (${request.path}) that tokenmeter did not instrument: ` +
        `this copy of ${pkg} was never patched, so its calls are not metered. It is usually a copy a bundler put ` +
        `into your app. ${FIX} Or hand the module to tokenmeter: instrument(await import('${pkg}')).`,
    );
  } catch {
    // A diagnostics subscriber must never break the app's request.
  }
}

let subscribed = false;
let enabled = false;

/**
 * Watches SDK requests on the wire while this copy's instrumentation is on. The SDKs send with the global
 * fetch, whose undici publishes every request on a diagnostics channel: the subscriber costs a path test per
 * request, nothing when no request is made.
 */
export function watchSdkRequests(on: boolean): void {
  enabled = on;
  if (!on || subscribed) return;
  try {
    subscribe('undici:request:create', onRequest);
    subscribed = true;
  } catch {
    // No diagnostics channel: this check is off.
  }
}

/** For tests: forget the counters (not the copies, the storage or the subscription). */
export function resetBundlingCounters(): void {
  state.withUserScopes = 0;
  state.instrumentedCalls = { openai: 0, anthropic: 0 };
  state.callsInUserScope = 0;
  state.sdkRequests = { openai: 0, anthropic: 0 };
}
