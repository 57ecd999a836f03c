import { context, diag, INVALID_SPAN_CONTEXT, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { GENAI } from '../contract/names.js';
import { estimateTokens, normalizeAiSdkUsage } from '../usage/index.js';
import { activeTelemetry, GenAiCall, type CallAdapter, type Telemetry } from './call.js';
import { admissionGate, tokenCount } from './enforce.js';
import { captureInput } from './patch.js';
import { currentAttribution, runMetered } from './scope.js';
import { warnOnce } from './warn.js';

/*
 * The Vercel AI SDK (`ai` 6 and 7) is metered at its provider layer: the model object an app hands to
 * generateText / streamText / generateObject / streamObject / embed / embedMany (LanguageModelV2/V3/V4 or an
 * EmbeddingModel) is passed on as a transparent proxy whose doGenerate / doStream / doEmbed record one GenAI
 * call each, with the usage the provider package reported (one span per model call, so a multi-step tool loop
 * is one span per step, never a parent that sums them). The seam is the public model specification, which every
 * provider package implements and which survives minor releases; `ai`'s own functions are only entered to swap
 * the model argument, and return the SDK's own results and stream objects.
 *
 * Counted once:
 * - SDKs tokenmeter also patches (a provider built on `openai`, ...) called inside a metered model call are not
 *   metered again (scope.ts `runMetered`).
 * - When the app turned on the AI SDK's own telemetry, its `ai.*.doGenerate` / `doStream` / `doEmbed` span is the
 *   one carrying the usage the exporter bills; tokenmeter then adds its attribution (withUser) to that span and
 *   records no span of its own (its metrics and trackUsage still see the call).
 */

const LANGUAGE_ENTRIES = ['generateText', 'streamText', 'generateObject', 'streamObject'] as const;
const EMBEDDING_ENTRIES = ['embed', 'embedMany'] as const;
const AGENT_CLASSES = ['ToolLoopAgent', 'Experimental_Agent'] as const;
const ORIGINAL = Symbol.for('tokenmeter.aiSdk.original');

type Kind = 'language' | 'embedding';

// The AI SDK's own telemetry span around one model call (its leaf span).
const AI_SDK_LEAF_SPAN = /^ai\.[A-Za-z]+\.do(Generate|Stream|Embed)$/;

/** `gen_ai.provider.name` for the AI SDK's provider ids ("openai.chat", "google.vertex.chat", "amazon-bedrock"). */
export function aiSdkProviderName(provider: unknown): string {
  if (typeof provider !== 'string' || provider.length === 0 || provider.length > 256) return 'unknown';
  const p = provider.toLowerCase();
  if (p.startsWith('google.vertex') || p.startsWith('vertex.')) return 'gcp.vertex_ai';
  if (p.startsWith('google')) return 'gcp.gemini';
  if (p.startsWith('azure')) return 'azure.ai.openai';
  if (p.startsWith('amazon-bedrock') || p.startsWith('bedrock')) return 'aws.bedrock';
  const head = p.split('.')[0];
  switch (head) {
    case 'mistral':
      return 'mistral_ai';
    case 'xai':
      return 'x_ai';
    default:
      return head;
  }
}

function promptText(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (!Array.isArray(prompt)) return '';
  let text = '';
  for (const m of prompt) {
    const c = m?.content;
    if (typeof c === 'string') text += c;
    else if (Array.isArray(c)) for (const part of c) if (typeof part?.text === 'string') text += part.text;
  }
  return text;
}

function adapter(excludesCache: boolean): CallAdapter {
  return {
    normalizeUsage: (raw) => normalizeAiSdkUsage(raw, { excludesCache }),
    estimateInput(call) {
      if (Array.isArray(call.params.values)) return estimateTokens(call.params.values.filter((v: unknown) => typeof v === 'string').join('\n'));
      return estimateTokens(promptText(call.params.prompt));
    },
    estimateOutput(call) {
      return estimateTokens(call.outputText);
    },
    maxOutputTokens(call) {
      return call.operation === 'embeddings' ? 0 : tokenCount(call.params.maxOutputTokens);
    },
  };
}
const ADAPTER = adapter(false);
// LanguageModelV2 Anthropic providers (`ai` 5 era) reported Anthropic's exclusive input_tokens as inputTokens.
const ADAPTER_V2_ANTHROPIC = adapter(true);

const nonRecordingTracer = {
  startSpan: () => trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
  startActiveSpan: (...args: unknown[]) => (args[args.length - 1] as (s: unknown) => unknown)(trace.wrapSpanContext(INVALID_SPAN_CONTEXT)),
} as unknown as Tracer;

/** The AI SDK's own leaf span, when the app turned its telemetry on and it is the active span now. */
function aiSdkLeafSpan(): Span | undefined {
  const span = trace.getSpan(context.active()) as (Span & { name?: unknown }) | undefined;
  if (span === undefined || typeof span.name !== 'string' || !AI_SDK_LEAF_SPAN.test(span.name)) return undefined;
  if (typeof span.isRecording === 'function' && !span.isRecording()) return undefined;
  return span;
}

/** Calls whose billed span is the AI SDK's own (its telemetry is on): the reservation is keyed by that span. */
const billedSpans = new WeakMap<GenAiCall, Span>();

function startCall(model: any, kind: Kind, options: any, streaming: boolean): GenAiCall | undefined {
  let telemetry: Telemetry | undefined = activeTelemetry();
  if (telemetry === undefined) return undefined;
  try {
    const params: Record<string, any> = options !== null && typeof options === 'object' ? options : {};
    const leaf = aiSdkLeafSpan();
    if (leaf !== undefined) {
      // The AI SDK's span bills this call: it gets the attribution, tokenmeter's span is not recorded.
      const attribution: Record<string, string> = {};
      currentAttribution(attribution);
      if (Object.keys(attribution).length > 0) leaf.setAttributes(attribution);
      telemetry = { ...telemetry, tracer: nonRecordingTracer };
    }
    const attrs: Attributes = {};
    if (typeof params.maxOutputTokens === 'number') attrs['gen_ai.request.max_tokens'] = params.maxOutputTokens;
    if (typeof params.temperature === 'number') attrs['gen_ai.request.temperature'] = params.temperature;
    if (typeof params.topP === 'number') attrs['gen_ai.request.top_p'] = params.topP;
    if (streaming) attrs[GENAI.requestStream] = true;
    if (kind === 'language') captureInput(attrs, telemetry.options, params.prompt);
    const provider = aiSdkProviderName(model.provider);
    const v2Anthropic = model.specificationVersion === 'v2' && provider === 'anthropic';
    const modelId = typeof model.modelId === 'string' && model.modelId.length > 0 ? model.modelId : 'unknown';
    const call = new GenAiCall(
      telemetry,
      v2Anthropic ? ADAPTER_V2_ANTHROPIC : ADAPTER,
      kind === 'embedding' ? 'embeddings' : 'chat',
      { provider, address: undefined, port: undefined },
      modelId,
      params,
      attrs,
    );
    if (streaming) call.streaming = true;
    if (leaf !== undefined) billedSpans.set(call, leaf);
    return call;
  } catch (err) {
    diag.error('tokenmeter: failed to start recording an AI SDK model call', err);
    return undefined;
  }
}

function finishReason(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const unified = (value as { unified?: unknown } | null)?.unified;
  return typeof unified === 'string' ? unified : undefined;
}

function readResponseMetadata(call: GenAiCall, response: any): void {
  if (response === null || typeof response !== 'object') return;
  if (typeof response.id === 'string') call.responseId = response.id;
  if (typeof response.modelId === 'string') call.responseModel = response.modelId;
}

function readGenerateResult(call: GenAiCall, result: any): void {
  if (result === null || typeof result !== 'object') return;
  readResponseMetadata(call, result.response);
  const reason = finishReason(result.finishReason);
  if (reason !== undefined) call.finishReasons = [reason];
  if (result.usage !== undefined && result.usage !== null) call.rawUsage = result.usage;
  if (call.rawUsage === undefined || call.options.captureMessageContent) {
    if (Array.isArray(result.content)) {
      for (const part of result.content) if (part?.type === 'text' && typeof part.text === 'string') call.outputText += part.text;
    } else if (typeof result.text === 'string') call.outputText += result.text;
  }
}

function readStreamPart(call: GenAiCall, part: any): void {
  if (part === null || typeof part !== 'object') return;
  switch (part.type) {
    case 'text-delta':
    case 'reasoning-delta': {
      const delta = part.delta ?? part.textDelta;
      if (typeof delta === 'string') call.outputText += delta;
      return;
    }
    case 'response-metadata':
      readResponseMetadata(call, part);
      return;
    case 'finish': {
      const reason = finishReason(part.finishReason);
      if (reason !== undefined) call.finishReasons = [reason];
      if (part.usage !== undefined && part.usage !== null) call.rawUsage = part.usage;
      return;
    }
  }
}

/**
 * The provider's part stream, observed: a new ReadableStream over the provider's reader, handed to the AI SDK
 * core (never to the app, whose stream objects are the SDK's own). Work per part: one switch on its type.
 */
function observeStream(source: ReadableStream<unknown>, call: GenAiCall, signal: AbortSignal | undefined): ReadableStream<unknown> {
  const reader = source.getReader();
  return new ReadableStream<unknown>({
    async pull(controller) {
      let r: ReadableStreamReadResult<unknown>;
      try {
        r = await reader.read();
      } catch (err) {
        call.end(err);
        throw err;
      }
      if (r.done) {
        call.end(undefined, signal?.aborted === true ? 'abort' : undefined);
        controller.close();
        return;
      }
      if (!call.ended) {
        call.firstChunk();
        try {
          readStreamPart(call, r.value);
        } catch (err) {
          diag.error('tokenmeter: failed to read an AI SDK stream part', err);
        }
      }
      controller.enqueue(r.value);
    },
    cancel(reason) {
      call.end(undefined, signal?.aborted === true ? 'abort' : 'break');
      return reader.cancel(reason);
    },
  });
}

/** The model's own method, marked as metered (no second count below it); a synchronous throw ends the call. */
function callOriginal(target: any, original: (...args: any[]) => any, args: unknown[], call: GenAiCall): any {
  // Admission control (enforce.ts): the provider packages send their own HTTP requests (no SDK tokenmeter patches
  // below them), so the model call itself waits for the reservation; a refusal rejects doGenerate / doStream with
  // UsageLimitError (not retried by the AI SDK: it is no APICallError) and the provider is never called.
  let gate: Promise<void> | undefined;
  try {
    gate = admissionGate(call, call.adapter, billedSpans.get(call));
  } catch (err) {
    diag.error('tokenmeter: the usage limit check failed; sending the call unchecked', err);
  }
  if (gate !== undefined) return gate.then(() => runMetered(() => original.apply(target, args)));
  try {
    return runMetered(() => original.apply(target, args));
  } catch (err) {
    call.end(err);
    throw err;
  }
}

function meteredDoGenerate(target: any, original: (...args: any[]) => any, kind: Kind): (...args: any[]) => any {
  return function tokenmeterDoGenerate(options: any): any {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as unknown[];
    const call = startCall(target, kind, options, false);
    if (call === undefined) return original.apply(target, args);
    const result = callOriginal(target, original, args, call);
    return Promise.resolve(result).then(
      (res: any) => {
        try {
          if (kind === 'embedding') {
            readResponseMetadata(call, res?.response);
            if (res?.usage !== undefined && res?.usage !== null) call.rawUsage = res.usage;
          } else readGenerateResult(call, res);
        } catch (err) {
          diag.error('tokenmeter: failed to read an AI SDK model result', err);
        }
        call.end();
        return res;
      },
      (err: unknown) => {
        call.end(err);
        throw err;
      },
    );
  };
}

function meteredDoStream(target: any, original: (...args: any[]) => any): (...args: any[]) => any {
  return function tokenmeterDoStream(options: any): any {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as unknown[];
    const call = startCall(target, 'language', options, true);
    if (call === undefined) return original.apply(target, args);
    const result = callOriginal(target, original, args, call);
    return Promise.resolve(result).then(
      (res: any) => {
        try {
          const stream = res?.stream;
          if (stream !== null && typeof stream === 'object' && typeof stream.getReader === 'function') {
            return { ...res, stream: observeStream(stream, call, options?.abortSignal) };
          }
          call.end();
        } catch (err) {
          diag.error('tokenmeter: failed to observe an AI SDK stream', err);
          call.end();
        }
        return res;
      },
      (err: unknown) => {
        call.end(err);
        throw err;
      },
    );
  };
}

const proxies = new WeakMap<object, object>();

/**
 * A transparent proxy of an AI SDK model whose doGenerate / doStream / doEmbed are metered; everything else is
 * the model's own (methods bound to the model, so private fields keep working). Anything that is not a model of
 * `kind` is returned as it is.
 */
export function meteredModel(model: unknown, kind: Kind): unknown {
  if (model === null || typeof model !== 'object') return model;
  const m = model as Record<string | symbol, any>;
  if (m[ORIGINAL] !== undefined) return model;
  const isModel = kind === 'language' ? typeof m.doGenerate === 'function' || typeof m.doStream === 'function' : typeof m.doEmbed === 'function';
  if (!isModel) return model;
  const cached = proxies.get(model);
  if (cached !== undefined) return cached;
  const wrapped = new Map<string | symbol, unknown>();
  const proxy = new Proxy(m, {
    get(target, prop) {
      if (prop === ORIGINAL) return target;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const hit = wrapped.get(prop);
      if (hit !== undefined && (hit as any)[ORIGINAL] === value) return hit;
      let out: any;
      if (kind === 'language' && prop === 'doGenerate') out = meteredDoGenerate(target, value, 'language');
      else if (kind === 'language' && prop === 'doStream') out = meteredDoStream(target, value);
      else if (kind === 'embedding' && prop === 'doEmbed') out = meteredDoGenerate(target, value, 'embedding');
      else out = value.bind(target);
      out[ORIGINAL] = value;
      wrapped.set(prop, out);
      return out;
    },
  });
  proxies.set(model, proxy);
  return proxy;
}

/** A model given by id (`'openai/gpt-5'`): resolved as `ai` resolves it, through the global provider or the gateway. */
function resolveById(id: string, kind: Kind, sdk: any): unknown {
  const provider = (globalThis as { AI_SDK_DEFAULT_PROVIDER?: any }).AI_SDK_DEFAULT_PROVIDER ?? sdk?.gateway;
  if (provider === null || provider === undefined) return id;
  if (kind === 'language') return typeof provider.languageModel === 'function' ? provider.languageModel(id) : id;
  const f = provider.embeddingModel ?? provider.textEmbeddingModel;
  return typeof f === 'function' ? f.call(provider, id) : id;
}

function withMeteredModel(options: any, kind: Kind, sdk: any): any {
  if (activeTelemetry() === undefined || options === null || typeof options !== 'object') return options;
  try {
    let model = options.model;
    if (typeof model === 'string') model = resolveById(model, kind, sdk);
    const metered = meteredModel(model, kind);
    return metered === options.model ? options : { ...options, model: metered };
  } catch (err) {
    diag.error('tokenmeter: could not meter an AI SDK model; the call runs unmetered', err);
    return options;
  }
}

function wrapEntry(original: (...args: any[]) => any, kind: Kind, sdk: any): (...args: any[]) => any {
  const wrapper = function tokenmeterAiSdk(this: unknown, options: any): any {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as unknown[];
    const send = withMeteredModel(options, kind, sdk);
    if (send === options) return original.apply(this, args);
    const sendArgs = Array.prototype.slice.call(args) as unknown[];
    sendArgs[0] = send;
    return original.apply(this, sendArgs);
  };
  (wrapper as any)[ORIGINAL] = original;
  return wrapper;
}

/** A subclass of the SDK's agent class whose model is metered (instances stay `instanceof` the SDK's class). */
function wrapAgentClass(Original: any, sdk: any): any {
  const Metered = class extends Original {
    constructor(...args: any[]) {
      if (args[0] !== null && typeof args[0] === 'object') args[0] = withMeteredModel(args[0], 'language', sdk);
      super(...args);
    }
  };
  Object.defineProperty(Metered, 'name', { value: Original.name });
  (Metered as any)[ORIGINAL] = Original;
  return Metered;
}

export function findAiSdk(mod: any): any {
  for (const m of [mod, mod?.default]) {
    if (m !== null && (typeof m === 'object' || typeof m === 'function') && typeof m.generateText === 'function' && typeof m.streamText === 'function') return m;
  }
  return undefined;
}

interface AppliedExport {
  target: Record<string, unknown>;
  name: string;
  original: unknown;
  wrapper: unknown;
}
const applied: AppliedExport[] = [];

export interface AiSdkPatch {
  /** The module exports to use from now on: the same object, or (when its exports are read-only getters) a copy. */
  exports: unknown;
  /** What is metered. */
  done: string[];
}

/**
 * Meters the `ai` module's entry points. Exports that can be assigned (import-in-the-middle's ESM namespace, a
 * plain object) are replaced in place; read-only CommonJS getters make a copy of the exports with the metered
 * functions, returned for `require` to hand out. A frozen ESM namespace (loaded before tokenmeter, without the
 * `--import` hook) cannot be changed: nothing is done and the caller reports it.
 */
export function patchAiSdk(mod: unknown, allowCopy = true): AiSdkPatch {
  const sdk = findAiSdk(mod);
  if (sdk === undefined) return { exports: mod, done: [] };
  const wrappers: Record<string, unknown> = {};
  for (const name of LANGUAGE_ENTRIES) if (typeof sdk[name] === 'function') wrappers[name] = sdk[name][ORIGINAL] !== undefined ? sdk[name] : wrapEntry(sdk[name], 'language', sdk);
  for (const name of EMBEDDING_ENTRIES) if (typeof sdk[name] === 'function') wrappers[name] = sdk[name][ORIGINAL] !== undefined ? sdk[name] : wrapEntry(sdk[name], 'embedding', sdk);
  // Experimental_Agent is ToolLoopAgent under another name: one metered class for both keeps them identical.
  const agents = new Map<unknown, unknown>();
  for (const name of AGENT_CLASSES) {
    const C = sdk[name];
    if (typeof C !== 'function') continue;
    if (C[ORIGINAL] !== undefined) wrappers[name] = C;
    else {
      if (!agents.has(C)) agents.set(C, wrapAgentClass(C, sdk));
      wrappers[name] = agents.get(C);
    }
  }
  const names = Object.keys(wrappers);
  let inPlace = true;
  for (const name of names) {
    const original = sdk[name];
    if (original === wrappers[name]) continue;
    try {
      sdk[name] = wrappers[name];
    } catch {
      // A getter-only export (CommonJS bundles) or a frozen namespace.
    }
    if (sdk[name] === wrappers[name]) applied.push({ target: sdk, name, original, wrapper: wrappers[name] });
    else inPlace = false;
  }
  if (inPlace) return { exports: mod, done: names };
  if (!allowCopy || sdk !== mod) {
    // Undo a partial patch: all entry points metered, or none (a half-metered SDK would mislead).
    unpatchAiSdk(sdk);
    return { exports: mod, done: [] };
  }
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(sdk)) copy[key] = sdk[key];
  Object.assign(copy, wrappers);
  if (sdk.__esModule === true) Object.defineProperty(copy, '__esModule', { value: true });
  return { exports: copy, done: names };
}

/** Restores the entry points patched in place on `sdk` (all when omitted). */
export function unpatchAiSdk(sdk?: unknown): void {
  for (let i = applied.length - 1; i >= 0; i--) {
    const p = applied[i];
    if (sdk !== undefined && p.target !== sdk) continue;
    try {
      if (p.target[p.name] === p.wrapper) p.target[p.name] = p.original;
    } catch {
      // Nothing more to do without risking the app.
    }
    applied.splice(i, 1);
  }
}

const WATCHING = Symbol.for('tokenmeter.aiSdk.unmeteredWatch');

/**
 * For `import 'tokenmeter/register'` from app code, after the app's static imports were linked: an `ai` ES module
 * loaded then cannot be changed, so its calls are not metered. Registers a global AI SDK telemetry integration (its
 * public hook, called on every generateText / streamText whether or not the app turned telemetry on) that says so
 * once, when the app really makes such a call, with the fix.
 */
export function watchUnmeteredAiSdk(): void {
  try {
    const g = globalThis as { AI_SDK_TELEMETRY_INTEGRATIONS?: unknown[]; [WATCHING]?: true };
    if (g[WATCHING] === true) return;
    g[WATCHING] = true;
    if (!Array.isArray(g.AI_SDK_TELEMETRY_INTEGRATIONS)) g.AI_SDK_TELEMETRY_INTEGRATIONS = [];
    g.AI_SDK_TELEMETRY_INTEGRATIONS.push({
      onStart(): void {
        warnOnce(
          'ai-sdk-unmetered',
          'the Vercel AI SDK (`ai`) was loaded before tokenmeter/register, so its calls are NOT metered (an ES module ' +
            "cannot be changed once it is linked). Start the app with `node --import tokenmeter/register app.js` instead of importing it in the app's code.",
        );
      },
    });
  } catch (err) {
    diag.error('tokenmeter: could not watch for unmetered AI SDK calls', err);
  }
}
