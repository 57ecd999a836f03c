import type { Attributes } from '@opentelemetry/api';
import { GENAI } from '../contract/names.js';
import {
  estimateChatTokens,
  estimateTokens,
  normalizeOpenAIChatUsage,
  normalizeOpenAIResponsesUsage,
  type EstimateChatMessage,
} from '../usage/index.js';
import type { CallAdapter, GenAiCall } from './call.js';
import type { ResolvedOptions } from './options.js';
import { captureInput, patchMethod, samplingAttributes, type MethodSpec } from './patch.js';
import { openAIPricingAttributes, openAIResponsesToolCalls } from './pricing-facts.js';
import { GENERIC_OPENAI_COMPATIBLE, serverInfo, type ServerInfo } from './provider.js';
import type { ResponseHandler } from './stainless.js';

// Per client object: a client's base URL is fixed at construction (withOptions() makes a new client).
const serverByClient = new WeakMap<object, ServerInfo>();

function openAIServer(resource: any): ServerInfo {
  const client = resource?._client;
  if (client === null || typeof client !== 'object') return serverInfo(undefined, GENERIC_OPENAI_COMPATIBLE);
  let info = serverByClient.get(client);
  if (info === undefined) {
    info = serverInfo(client.baseURL, GENERIC_OPENAI_COMPATIBLE, client.constructor?.name === 'AzureOpenAI');
    serverByClient.set(client, info);
  }
  return info;
}

function outputEstimate(call: GenAiCall): number {
  return estimateTokens(call.outputText, call.responseModel ?? call.requestModel);
}

function pushFinishReason(call: GenAiCall, reason: unknown): void {
  if (typeof reason !== 'string') return;
  if (call.finishReasons === undefined) call.finishReasons = [reason];
  else call.finishReasons.push(reason);
}

// ---------------------------------------------------------------------------------------------------------------
// Chat Completions

const chatAdapter: CallAdapter = {
  normalizeUsage: normalizeOpenAIChatUsage,
  pricingAttributes: (raw, usage, warnings) => openAIPricingAttributes(raw, usage, warnings, 'prompt_tokens_details', 'completion_tokens_details'),
  estimateInput(call) {
    const messages = Array.isArray(call.params.messages) ? (call.params.messages as EstimateChatMessage[]) : [];
    let tokens = estimateChatTokens(messages, call.requestModel);
    if (Array.isArray(call.params.tools)) tokens += estimateTokens(JSON.stringify(call.params.tools), call.requestModel);
    return tokens;
  },
  estimateOutput: outputEstimate,
};

function chatMessageText(message: any): string {
  let text = typeof message?.content === 'string' ? message.content : '';
  if (Array.isArray(message?.tool_calls)) {
    for (const tc of message.tool_calls) {
      if (tc?.function) text += `${tc.function.name ?? ''}${tc.function.arguments ?? ''}`;
    }
  }
  return text;
}

const chatHandler: ResponseHandler = {
  onBody(call, body) {
    if (body === null || typeof body !== 'object') return;
    call.responseId = body.id;
    call.responseModel = body.model;
    if (typeof body.service_tier === 'string') call.serviceTier = body.service_tier;
    call.rawUsage = body.usage;
    const choices = body.choices;
    if (Array.isArray(choices)) {
      const needText = body.usage == null || call.options.captureMessageContent;
      for (const choice of choices) {
        pushFinishReason(call, choice?.finish_reason);
        if (needText) call.outputText += chatMessageText(choice?.message);
      }
    }
  },
  onChunk(call, chunk) {
    if (call.responseId === undefined) {
      call.responseId = chunk.id;
      call.responseModel = chunk.model;
    }
    const choices = chunk.choices;
    if (choices !== undefined && choices.length > 0) {
      for (let i = 0; i < choices.length; i++) {
        const choice = choices[i];
        const delta = choice.delta;
        if (delta !== undefined && delta !== null) {
          if (typeof delta.content === 'string') call.outputText += delta.content;
          const toolCalls = delta.tool_calls;
          if (toolCalls !== undefined && toolCalls !== null) {
            for (const tc of toolCalls) {
              const fn = tc.function;
              if (fn !== undefined) call.outputText += (fn.name ?? '') + (fn.arguments ?? '');
            }
          }
        }
        if (choice.finish_reason) pushFinishReason(call, choice.finish_reason);
      }
    }
    const usage = chunk.usage;
    if (usage !== undefined && usage !== null) {
      call.rawUsage = usage;
      if (chunk.service_tier) call.serviceTier = chunk.service_tier;
      // The usage-only chunk the caller did not ask for stays hidden.
      return call.injectedUsage && (choices === undefined || choices.length === 0);
    }
    // With include_usage every chunk carries `usage: null`; without it the field is absent.
    if (usage === null && call.injectedUsage) delete chunk.usage;
    return false;
  },
};

const chatSpec: MethodSpec = {
  operation: 'chat',
  adapter: chatAdapter,
  handler: chatHandler,
  server: openAIServer,
  requestAttributes(params, options) {
    const attrs: Attributes = samplingAttributes(params, ['max_completion_tokens', 'max_tokens']);
    if (typeof params.service_tier === 'string') attrs[GENAI.requestServiceTier] = params.service_tier;
    captureInput(attrs, options, params.messages);
    return attrs;
  },
  prepare(call, params) {
    if (params.stream !== true || !call.options.injectStreamUsage) return params;
    const so = params.stream_options;
    // An explicit include_usage (true or false) is the caller's choice.
    if (so !== undefined && so !== null && so.include_usage !== undefined) return params;
    call.injectedUsage = true;
    return { ...params, stream_options: { ...so, include_usage: true } };
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Responses

function responsesInputMessages(params: Record<string, any>): EstimateChatMessage[] {
  const out: EstimateChatMessage[] = [];
  if (typeof params.instructions === 'string') out.push({ role: 'system', content: params.instructions });
  const input = params.input;
  if (typeof input === 'string') out.push({ role: 'user', content: input });
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (item && typeof item === 'object' && typeof item.role === 'string') out.push({ role: item.role, content: item.content });
      else out.push({ role: 'tool', content: item });
    }
  }
  return out;
}

const responsesAdapter: CallAdapter = {
  normalizeUsage: normalizeOpenAIResponsesUsage,
  pricingAttributes: (raw, usage, warnings) => openAIPricingAttributes(raw, usage, warnings, 'input_tokens_details', 'output_tokens_details'),
  estimateInput(call) {
    return estimateChatTokens(responsesInputMessages(call.params), call.requestModel);
  },
  estimateOutput: outputEstimate,
};

function readResponseObject(call: GenAiCall, response: any, needText: boolean): void {
  if (response === null || typeof response !== 'object') return;
  if (typeof response.id === 'string') call.responseId = response.id;
  if (typeof response.model === 'string') call.responseModel = response.model;
  if (typeof response.service_tier === 'string') call.serviceTier = response.service_tier;
  if (response.usage !== undefined && response.usage !== null) call.rawUsage = response.usage;
  // The final response object lists every output item: a later event's count replaces an earlier one.
  if (Array.isArray(response.output)) call.toolCalls = openAIResponsesToolCalls(response.output, call.params.tools);
  if (typeof response.status === 'string' && response.status !== 'in_progress' && response.status !== 'queued') {
    const reason = response.incomplete_details?.reason;
    call.finishReasons = [typeof reason === 'string' ? reason : response.status];
  }
  if (needText && Array.isArray(response.output)) {
    let text = '';
    for (const item of response.output) {
      if (Array.isArray(item?.content)) {
        for (const part of item.content) if (typeof part?.text === 'string') text += part.text;
      } else if (typeof item?.arguments === 'string') text += `${item.name ?? ''}${item.arguments}`;
    }
    call.outputText = text;
  }
}

const responsesHandler: ResponseHandler = {
  onBody(call, body) {
    readResponseObject(call, body, body?.usage == null || call.options.captureMessageContent);
  },
  onChunk(call, event) {
    const type: string = event.type;
    if (type === 'response.output_text.delta' || type === 'response.function_call_arguments.delta') {
      if (typeof event.delta === 'string') call.outputText += event.delta;
    } else if (type === 'response.created' || type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
      readResponseObject(call, event.response, false);
    }
    return false;
  },
};

const responsesSpec: MethodSpec = {
  operation: 'chat',
  adapter: responsesAdapter,
  handler: responsesHandler,
  server: openAIServer,
  requestAttributes(params, options: ResolvedOptions) {
    const attrs: Attributes = samplingAttributes(params, ['max_output_tokens']);
    if (typeof params.service_tier === 'string') attrs[GENAI.requestServiceTier] = params.service_tier;
    captureInput(attrs, options, params.input);
    return attrs;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Embeddings

const embeddingsAdapter: CallAdapter = {
  normalizeUsage: normalizeOpenAIChatUsage,
  estimateInput(call) {
    const input = call.params.input;
    const one = (v: unknown): number =>
      typeof v === 'string' ? estimateTokens(v, call.requestModel) : Array.isArray(v) && typeof v[0] === 'number' ? v.length : 0;
    if (Array.isArray(input) && typeof input[0] !== 'number') return input.reduce((sum: number, v: unknown) => sum + one(v), 0);
    return one(input);
  },
  estimateOutput: () => 0,
};

const embeddingsHandler: ResponseHandler = {
  onBody(call, body) {
    if (body === null || typeof body !== 'object') return;
    if (typeof body.model === 'string') call.responseModel = body.model;
    call.rawUsage = body.usage;
  },
  onChunk: () => false,
};

const embeddingsSpec: MethodSpec = {
  operation: 'embeddings',
  adapter: embeddingsAdapter,
  handler: embeddingsHandler,
  server: openAIServer,
  requestAttributes(params) {
    const attrs: Attributes = {};
    if (typeof params.dimensions === 'number') attrs['gen_ai.embeddings.dimension.count'] = params.dimensions;
    if (typeof params.encoding_format === 'string') attrs['gen_ai.request.encoding_formats'] = [params.encoding_format];
    return attrs;
  },
};

/** The OpenAI client class among a module's exports (ESM namespace, CJS exports or the class itself). */
export function findOpenAIClass(mod: any): any {
  for (const c of [mod, mod?.OpenAI, mod?.default, mod?.default?.OpenAI, mod?.default?.default]) {
    if (typeof c === 'function' && typeof c.Chat?.Completions?.prototype?.create === 'function') return c;
  }
  return undefined;
}

/** Patches the OpenAI SDK's resource prototypes (shared by default and named exports). Returns what it patched. */
export function patchOpenAI(mod: unknown): string[] {
  const OpenAI = findOpenAIClass(mod);
  if (OpenAI === undefined) return [];
  const done: string[] = [];
  if (patchMethod(OpenAI.Chat.Completions.prototype, 'create', chatSpec)) done.push('chat.completions.create');
  if (patchMethod(OpenAI.Responses?.prototype, 'create', responsesSpec)) done.push('responses.create');
  if (patchMethod(OpenAI.Embeddings?.prototype, 'create', embeddingsSpec)) done.push('embeddings.create');
  return done;
}
