import { diag, type Attributes } from '@opentelemetry/api';
import { GENAI } from '../contract/names.js';
import { currentScope } from './scope.js';
import { activeTelemetry, GenAiCall, type CallAdapter } from './call.js';
import type { ResolvedOptions } from './options.js';
import { admissionGate, armGate, gateTaken, unhookGates } from './enforce.js';
import type { ServerInfo } from './provider.js';
import { instrumentApiPromise, type ResponseHandler } from './stainless.js';
import { warnOnce } from './warn.js';

/** How one SDK method becomes a GenAI call. */
export interface MethodSpec {
  operation: string;
  adapter: CallAdapter;
  handler: ResponseHandler;
  /** The provider and server of the client the resource belongs to (`this` of the method). */
  server(resource: any): ServerInfo;
  /** Request attributes beyond the common ones (set at span start). */
  requestAttributes(params: Record<string, any>, options: ResolvedOptions): Attributes;
  /** Returns the parameters to send, when tokenmeter changes them (never mutates the caller's object). */
  prepare?(call: GenAiCall, params: Record<string, any>): Record<string, any>;
}

const ORIGINAL = Symbol('tokenmeter.original');

interface Patch {
  target: Record<string, unknown>;
  name: string;
  original: (...args: any[]) => any;
  wrapper: (...args: any[]) => any;
}

const applied: Patch[] = [];

function wrapMethod(original: (...args: any[]) => any, spec: MethodSpec): (...args: any[]) => any {
  // `arguments` rather than rest parameters: no argument array is built per call.
  const wrapper = function tokenmeterCreate(this: any, params: any): any {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments;
    const telemetry = activeTelemetry();
    if (telemetry === undefined || params === null || typeof params !== 'object') return original.apply(this, args as unknown as unknown[]);
    // Read once per call: whether an outer layer meters it already, and its withUser / trackUsage scope.
    const scope = currentScope();
    if (scope?.metered === true) return original.apply(this, args as unknown as unknown[]);
    let call: GenAiCall;
    try {
      const model = typeof params.model === 'string' ? params.model : 'unknown';
      call = new GenAiCall(
        telemetry,
        spec.adapter,
        spec.operation,
        spec.server(this),
        model,
        params,
        spec.requestAttributes(params, telemetry.options),
        scope ?? null,
      );
    } catch (err) {
      diag.error('tokenmeter: failed to start recording an LLM call', err);
      return original.apply(this, args as unknown as unknown[]);
    }
    let send = params;
    if (spec.prepare !== undefined) {
      try {
        send = spec.prepare(call, params);
      } catch (err) {
        diag.error('tokenmeter: failed to prepare an LLM request; sending it unchanged', err);
        call.injectedUsage = false;
        send = params;
      }
    }
    // Admission control (enforce.ts): the SDK's request waits for the exporter's reservation and never goes out
    // when it is refused.
    let gate: Promise<void> | undefined;
    try {
      gate = admissionGate(call, spec.adapter);
      if (gate !== undefined) {
        // The gate's own rejection is observed by the SDK's request; this keeps an unused gate from being unhandled.
        gate.catch(() => {});
        if (!armGate(this, gate)) gate = undefined;
      }
    } catch (err) {
      diag.error('tokenmeter: the usage limit check failed; sending the call unchecked', err);
      gate = undefined;
    }
    let result: unknown;
    try {
      if (send === params) result = original.apply(this, args as unknown as unknown[]);
      else {
        const sendArgs = Array.prototype.slice.call(args) as unknown[];
        sendArgs[0] = send;
        result = original.apply(this, sendArgs);
      }
    } catch (err) {
      if (gate !== undefined) gateTaken();
      call.end(err);
      throw err;
    }
    if (gate !== undefined && !gateTaken()) {
      warnOnce(
        'enforce-unsupported',
        `usage limits cannot be enforced on ${spec.server(this).provider} ${spec.operation} calls with this SDK version (its request path is not the one tokenmeter knows): they are sent unchecked.`,
      );
    }
    try {
      return instrumentApiPromise(result, call, spec.handler);
    } catch (err) {
      diag.error('tokenmeter: failed to observe an LLM response', err);
      call.end();
      return result;
    }
  };
  (wrapper as any)[ORIGINAL] = original;
  return wrapper;
}

/** Wraps `target[name]` once (re-wrapping an already wrapped method is a no-op). Returns whether it is wrapped. */
export function patchMethod(target: unknown, name: string, spec: MethodSpec): boolean {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) return false;
  const t = target as Record<string, unknown>;
  const current = t[name];
  if (typeof current !== 'function') return false;
  if ((current as any)[ORIGINAL] !== undefined) return true;
  const original = current as (...args: any[]) => any;
  const wrapper = wrapMethod(original, spec);
  t[name] = wrapper;
  applied.push({ target: t, name, original, wrapper });
  return true;
}

/**
 * Wraps `target[name]` with `wrap(original)` once, for SDKs whose methods are not Stainless APIPromises (Google
 * Gen AI, AWS SDK). Recorded like patchMethod's wrappers, so unpatchAll restores it. Returns whether it is wrapped.
 */
export function wrapOnce(target: unknown, name: string, wrap: (original: (...args: any[]) => any) => (...args: any[]) => any): boolean {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) return false;
  const t = target as Record<string, unknown>;
  const current = t[name];
  if (typeof current !== 'function') return false;
  if ((current as any)[ORIGINAL] !== undefined) return true;
  const original = current as (...args: any[]) => any;
  const wrapper = wrap(original);
  (wrapper as any)[ORIGINAL] = original;
  t[name] = wrapper;
  applied.push({ target: t, name, original, wrapper });
  return true;
}

/** Restores the methods this module wrapped under `target` (all of them when omitted). */
export function unpatchAll(filter?: (target: Record<string, unknown>) => boolean): void {
  if (filter === undefined) unhookGates();
  for (let i = applied.length - 1; i >= 0; i--) {
    const p = applied[i];
    if (filter !== undefined && !filter(p.target)) continue;
    if (p.target[p.name] === p.wrapper) p.target[p.name] = p.original;
    applied.splice(i, 1);
  }
}

/** Common request attributes: the sampling parameters the conventions name, when the caller set them. */
export function samplingAttributes(params: Record<string, any>, maxTokensKeys: readonly string[]): Attributes {
  const attrs: Attributes = {};
  for (const key of maxTokensKeys) {
    if (typeof params[key] === 'number') {
      attrs['gen_ai.request.max_tokens'] = params[key];
      break;
    }
  }
  if (typeof params.temperature === 'number') attrs['gen_ai.request.temperature'] = params.temperature;
  if (typeof params.top_p === 'number') attrs['gen_ai.request.top_p'] = params.top_p;
  if (params.stream === true) attrs[GENAI.requestStream] = true;
  return attrs;
}

/** JSON of the request's messages for `gen_ai.input.messages`, only when content capture is on. */
export function captureInput(attrs: Attributes, options: ResolvedOptions, value: unknown): void {
  if (!options.captureMessageContent || value === undefined) return;
  try {
    attrs[GENAI.inputMessages] = JSON.stringify(value);
  } catch {
    // Unserialisable content is left out rather than guessed.
  }
}
