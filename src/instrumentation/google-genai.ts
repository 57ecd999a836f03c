import { diag, type Attributes } from '@opentelemetry/api';
import { GENAI } from '../contract/names.js';
import { estimateTokens, normalizeGeminiUsage, type NormalizedUsage } from '../usage/index.js';
import { insideMeteredCall } from './scope.js';
import { activeTelemetry, GenAiCall, type CallAdapter } from './call.js';
import type { ResolvedOptions } from './options.js';
import { admissionGate, tokenCount } from './enforce.js';
import { captureInput, wrapOnce } from './patch.js';
import { serverInfo, type ServerInfo } from './provider.js';
import { geminiGroundingQueries } from './pricing-facts.js';

/* `gen_ai.provider.name` well-known values of the GenAI conventions: the Gemini API and Vertex AI. */
export const GEMINI_PROVIDER = 'gcp.gemini';
export const VERTEX_AI_PROVIDER = 'gcp.vertex_ai';

/*
 * @google/genai defines its public methods (`models.generateContent`, `generateContentStream`, `embedContent`)
 * as arrow functions assigned in the Models constructor, so they cannot be wrapped on a prototype. Each of them
 * (and `chats`, which calls `models.generateContent`) sends every HTTP request through one of the prototype
 * methods `generateContentInternal`, `generateContentStreamInternal` and `embedContentInternal` (`embedContent`
 * itself in 1.x). One request = one billed call, so wrapping those meters automatic function calling and
 * automatic continuation as the several requests they are, and every request once. `countTokens` is free and not
 * metered. These method names are the same in every release from 1.0.0 to 3.x (checked per matrix cell).
 */

function textOfParts(parts: unknown): string {
  if (!Array.isArray(parts)) return '';
  let text = '';
  for (const p of parts) {
    if (typeof p === 'string') text += p;
    else if (typeof p?.text === 'string') text += p.text;
    else if (p?.functionCall !== undefined) text += JSON.stringify(p.functionCall);
    else if (p?.functionResponse !== undefined) text += JSON.stringify(p.functionResponse);
  }
  return text;
}

/** The text of `contents` in any shape the SDK accepts: a string, a part, a Content, or arrays of them. */
function textOfContents(contents: unknown): string {
  if (typeof contents === 'string') return contents;
  if (contents === null || typeof contents !== 'object') return '';
  if (Array.isArray(contents)) {
    let text = '';
    for (const c of contents) text += textOfContents(c);
    return text;
  }
  const c = contents as Record<string, unknown>;
  if (Array.isArray(c.parts)) return textOfParts(c.parts);
  return textOfParts([c]);
}

/** Gemini's tokenizer is not public: the estimate uses o200k like every other and is labelled as an estimate. */
const adapter: CallAdapter = {
  normalizeUsage(raw: unknown): NormalizedUsage {
    return normalizeGeminiUsage(raw);
  },
  estimateInput(call) {
    const p = call.params;
    let text = textOfContents(p.contents ?? p.content);
    const system = p.config?.systemInstruction;
    if (system !== undefined) text += textOfContents(system);
    return estimateTokens(text);
  },
  estimateOutput(call) {
    return estimateTokens(call.outputText);
  },
  maxOutputTokens(call) {
    // An embedding has no output; unset means the exporter's default.
    return call.operation === 'embeddings' ? 0 : tokenCount(call.params.config?.maxOutputTokens);
  },
};

const serverByClient = new WeakMap<object, ServerInfo>();

function geminiServer(models: any, params: Record<string, any>): ServerInfo {
  const apiClient = models?.apiClient;
  const vertex = typeof apiClient?.isVertexAI === 'function' && apiClient.isVertexAI() === true;
  const provider = vertex ? VERTEX_AI_PROVIDER : GEMINI_PROVIDER;
  const perRequest = params.config?.httpOptions?.baseUrl;
  if (typeof perRequest === 'string') return serverInfo(perRequest, provider);
  if (apiClient === null || typeof apiClient !== 'object') return serverInfo(undefined, provider);
  let info = serverByClient.get(apiClient);
  if (info === undefined || info.provider !== provider) {
    let base: unknown;
    try {
      base = apiClient.getBaseUrl();
    } catch {
      base = undefined;
    }
    info = serverInfo(base, provider);
    serverByClient.set(apiClient, info);
  }
  return info;
}

function requestAttributes(params: Record<string, any>, options: ResolvedOptions): Attributes {
  const attrs: Attributes = {};
  const c = params.config;
  if (c !== null && typeof c === 'object') {
    if (typeof c.maxOutputTokens === 'number') attrs['gen_ai.request.max_tokens'] = c.maxOutputTokens;
    if (typeof c.temperature === 'number') attrs['gen_ai.request.temperature'] = c.temperature;
    if (typeof c.topP === 'number') attrs['gen_ai.request.top_p'] = c.topP;
    if (typeof c.topK === 'number') attrs['gen_ai.request.top_k'] = c.topK;
  }
  captureInput(attrs, options, params.contents ?? params.content);
  return attrs;
}

/** The distinct grounding queries seen so far, per call (a stream may spread or repeat them over chunks). */
const groundingQueries = new WeakMap<GenAiCall, Set<string>>();

/** Reads one GenerateContentResponse (a whole response or one stream chunk). */
function readResponse(call: GenAiCall, r: any, stream: boolean): void {
  if (r === null || typeof r !== 'object') return;
  if (Array.isArray(r.candidates) && r.candidates.some((c: any) => c?.groundingMetadata != null)) {
    let seen = groundingQueries.get(call);
    if (seen === undefined) groundingQueries.set(call, (seen = new Set()));
    geminiGroundingQueries(r, seen);
    if (seen.size > 0) call.toolCalls = { search_grounding: seen.size };
  }
  if (typeof r.responseId === 'string') call.responseId = r.responseId;
  if (typeof r.modelVersion === 'string') call.responseModel = r.modelVersion;
  let finished = false;
  if (Array.isArray(r.candidates)) {
    const reasons: string[] = [];
    for (const cand of r.candidates) {
      if (typeof cand?.finishReason === 'string') reasons.push(cand.finishReason);
      if (stream || call.options.captureMessageContent || r.usageMetadata == null) call.outputText += textOfParts(cand?.content?.parts);
    }
    if (reasons.length > 0) {
      call.finishReasons = reasons;
      finished = true;
    }
  }
  if (r.usageMetadata !== undefined && r.usageMetadata !== null) {
    // Every chunk carries the counts so far (the prompt in full, the candidates as generated): the last wins.
    call.rawUsage = r.usageMetadata;
    // Until a chunk with a finish reason arrives, the output count may be short: completed with a labelled estimate.
    call.usagePartial = stream && !finished;
  } else if (stream && finished && call.rawUsage !== undefined) {
    call.usagePartial = false;
  }
}

function embedUsage(r: any): unknown {
  if (r?.usageMetadata !== undefined && r.usageMetadata !== null) return r.usageMetadata;
  // Vertex's predict endpoint counts per embedding (statistics.tokenCount) and reports no usageMetadata.
  if (Array.isArray(r?.embeddings)) {
    let sum = 0;
    let any = false;
    for (const e of r.embeddings) {
      const n = e?.statistics?.tokenCount;
      if (typeof n === 'number') {
        sum += n;
        any = true;
      }
    }
    if (any) return { promptTokenCount: sum };
  }
  return undefined;
}

type Kind = 'generate' | 'stream' | 'embed';

function startCall(models: any, params: any, kind: Kind): GenAiCall | undefined {
  const telemetry = activeTelemetry();
  if (telemetry === undefined || params === null || typeof params !== 'object' || insideMeteredCall()) return undefined;
  try {
    const model = typeof params.model === 'string' ? params.model : 'unknown';
    const attrs = requestAttributes(params, telemetry.options);
    if (kind === 'stream') attrs[GENAI.requestStream] = true;
    const call = new GenAiCall(
      telemetry,
      adapter,
      kind === 'embed' ? 'embeddings' : 'generate_content',
      geminiServer(models, params),
      model,
      params,
      attrs,
    );
    if (kind === 'stream') call.streaming = true;
    return call;
  } catch (err) {
    diag.error('tokenmeter: failed to start recording a Gemini call', err);
    return undefined;
  }
}

/**
 * The part both wrappers share: starts the call, runs the SDK method and hands its resolved value to `settle`,
 * which reads it, ends the call and returns what the caller gets (the SDK's own value). A synchronous throw or a
 * rejection ends the call with the error and reaches the caller unchanged.
 */
function observeCall(self: any, original: (...args: any[]) => any, args: unknown[], params: any, kind: Kind, settle: (call: GenAiCall, value: any) => any): any {
  const call = startCall(self, params, kind);
  if (call === undefined) return original.apply(self, args);
  // Admission control (enforce.ts): these methods are async (the SDK's public methods await them), so the request
  // is held by sending it only once the gate opens; a refusal rejects the SDK's own promise and nothing is sent.
  let gate: Promise<void> | undefined;
  try {
    gate = admissionGate(call, adapter);
  } catch (err) {
    diag.error('tokenmeter: the usage limit check failed; sending the call unchecked', err);
  }
  let result: any;
  if (gate !== undefined) {
    result = gate.then(() => original.apply(self, args));
  } else {
    try {
      result = original.apply(self, args);
    } catch (err) {
      call.end(err);
      throw err;
    }
  }
  if (typeof result?.then !== 'function') {
    call.end();
    return result;
  }
  return result.then(
    (value: any) => settle(call, value),
    (err: unknown) => {
      call.end(err);
      throw err;
    },
  );
}

function wrapUnary(kind: 'generate' | 'embed'): (original: (...args: any[]) => any) => (...args: any[]) => any {
  const settle = (call: GenAiCall, response: any): any => {
    try {
      if (kind === 'embed') call.rawUsage = embedUsage(response);
      else readResponse(call, response, false);
    } catch (err) {
      diag.error('tokenmeter: failed to read a Gemini response', err);
    }
    call.end();
    return response;
  };
  return (original) =>
    function tokenmeterGenAi(this: any, params: any): any {
      // eslint-disable-next-line prefer-rest-params
      return observeCall(this, original, arguments as unknown as unknown[], params, kind, settle);
    };
}

/**
 * Observes the SDK's own async generator in place (own `next`/`return`/`throw`), so the caller keeps the very
 * object the SDK made. Work per chunk: one extra promise reaction.
 */
function observeGenerator(gen: any, call: GenAiCall): void {
  const next = gen.next;
  const ret = gen.return;
  const thr = gen.throw;
  const onRejected = (err: unknown): never => {
    call.end(err);
    throw err;
  };
  const onFulfilled = (r: IteratorResult<unknown>): IteratorResult<unknown> => {
    if (r.done === true) {
      call.end(undefined, call.params.config?.abortSignal?.aborted === true ? 'abort' : undefined);
      return r;
    }
    if (call.ended) return r;
    call.firstChunk();
    try {
      readResponse(call, r.value, true);
    } catch (err) {
      diag.error('tokenmeter: failed to read a Gemini stream chunk', err);
    }
    return r;
  };
  gen.next = function tokenmeterNext(this: unknown): Promise<IteratorResult<unknown>> {
    // eslint-disable-next-line prefer-rest-params
    return next.apply(this, arguments).then(onFulfilled, onRejected);
  };
  if (typeof ret === 'function') {
    gen.return = function tokenmeterReturn(this: unknown): Promise<IteratorResult<unknown>> {
      call.end(undefined, call.params.config?.abortSignal?.aborted === true ? 'abort' : 'break');
      // eslint-disable-next-line prefer-rest-params
      return ret.apply(this, arguments);
    };
  }
  if (typeof thr === 'function') {
    gen.throw = function tokenmeterThrow(this: unknown, err?: unknown): Promise<IteratorResult<unknown>> {
      call.end(err);
      // eslint-disable-next-line prefer-rest-params
      return thr.apply(this, arguments);
    };
  }
}

function settleStream(call: GenAiCall, gen: any): any {
  try {
    if (gen !== null && typeof gen === 'object' && typeof gen.next === 'function') observeGenerator(gen, call);
    else call.end();
  } catch (err) {
    diag.error('tokenmeter: failed to observe a Gemini stream', err);
    call.end();
  }
  return gen;
}

function wrapStream(original: (...args: any[]) => any): (...args: any[]) => any {
  return function tokenmeterGenAiStream(this: any, params: any): any {
    // eslint-disable-next-line prefer-rest-params
    return observeCall(this, original, arguments as unknown as unknown[], params, 'stream', settleStream);
  };
}

export function findGoogleGenAiModels(mod: any): any {
  for (const m of [mod, mod?.default]) {
    const Models = m?.Models;
    if (typeof Models === 'function' && typeof Models.prototype?.generateContentInternal === 'function') return Models;
  }
  return undefined;
}

/** Patches the request methods of `Models` (see above). Returns what it patched. */
export function patchGoogleGenAi(mod: unknown): string[] {
  const Models = findGoogleGenAiModels(mod);
  if (Models === undefined) return [];
  const proto = Models.prototype;
  const done: string[] = [];
  if (wrapOnce(proto, 'generateContentInternal', wrapUnary('generate'))) done.push('models.generateContent');
  if (wrapOnce(proto, 'generateContentStreamInternal', wrapStream)) done.push('models.generateContentStream');
  // 2.x and later route embedContent (an own arrow function) through embedContentInternal; 1.x has it on the prototype.
  const embedName = typeof proto.embedContentInternal === 'function' ? 'embedContentInternal' : 'embedContent';
  if (wrapOnce(proto, embedName, wrapUnary('embed'))) done.push('models.embedContent');
  return done;
}
