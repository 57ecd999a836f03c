import type { Attributes } from '@opentelemetry/api';
import { estimateChatTokens, estimateTokens, normalizeAnthropicUsage, type EstimateChatMessage } from '../usage/index.js';
import type { CallAdapter, GenAiCall } from './call.js';
import { captureInput, patchMethod, samplingAttributes, type MethodSpec } from './patch.js';
import { anthropicPricingAttributes } from './pricing-facts.js';
import { serverInfo, type ServerInfo } from './provider.js';
import type { ResponseHandler } from './stainless.js';

export const ANTHROPIC_PROVIDER = 'anthropic';

// Per client object, as for OpenAI: a client's base URL is fixed at construction (withOptions() makes a new one).
const serverByClient = new WeakMap<object, ServerInfo>();

function anthropicServer(resource: any): ServerInfo {
  const client = resource?._client;
  if (client === null || typeof client !== 'object') return serverInfo(undefined, ANTHROPIC_PROVIDER);
  let info = serverByClient.get(client);
  if (info === undefined) {
    info = serverInfo(client.baseURL, ANTHROPIC_PROVIDER);
    serverByClient.set(client, info);
  }
  return info;
}

/*
 * Anthropic has no public tokenizer that ships with us: the estimate uses OpenAI's o200k encoding and is
 * labelled as an estimate like every other.
 */
const adapter: CallAdapter = {
  normalizeUsage: normalizeAnthropicUsage,
  pricingAttributes: anthropicPricingAttributes,
  estimateInput(call) {
    const messages: EstimateChatMessage[] = [];
    const system = call.params.system;
    if (system !== undefined && system !== null) messages.push({ role: 'system', content: system });
    if (Array.isArray(call.params.messages)) messages.push(...(call.params.messages as EstimateChatMessage[]));
    let tokens = estimateChatTokens(messages);
    if (Array.isArray(call.params.tools)) tokens += estimateTokens(JSON.stringify(call.params.tools));
    return tokens;
  },
  estimateOutput(call) {
    return estimateTokens(call.outputText);
  },
};

function contentText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const block of content) {
    if (typeof block?.text === 'string') text += block.text;
    else if (typeof block?.thinking === 'string') text += block.thinking;
    else if (block?.type === 'tool_use' && block.input !== undefined) text += `${block.name ?? ''}${JSON.stringify(block.input)}`;
  }
  return text;
}

/** message_delta usage counters are cumulative totals for the whole message: overwrite, never add. */
function applyDeltaUsage(call: GenAiCall, delta: Record<string, unknown>): void {
  const base = (call.rawUsage ?? {}) as Record<string, unknown>;
  for (const key in delta) {
    const v = delta[key];
    if (v !== null && v !== undefined) base[key] = v;
  }
  call.rawUsage = base;
}

const handler: ResponseHandler = {
  onBody(call, body) {
    if (body === null || typeof body !== 'object') return;
    call.responseId = body.id;
    call.responseModel = body.model;
    if (typeof body.stop_reason === 'string') call.finishReasons = [body.stop_reason];
    call.rawUsage = body.usage;
    if (typeof body.usage?.service_tier === 'string') call.serviceTier = body.usage.service_tier;
    if (body.usage == null || call.options.captureMessageContent) call.outputText = contentText(body.content);
  },
  onChunk(call, event) {
    switch (event.type) {
      case 'content_block_delta': {
        const d = event.delta;
        if (d.type === 'text_delta') call.outputText += d.text;
        else if (d.type === 'input_json_delta') call.outputText += d.partial_json;
        else if (d.type === 'thinking_delta') call.outputText += d.thinking;
        break;
      }
      case 'message_start': {
        const m = event.message;
        if (m !== undefined && m !== null) {
          call.responseId = m.id;
          call.responseModel = m.model;
          // A copy: the SDK's MessageStream mutates this object as its snapshot.
          if (m.usage) {
            call.rawUsage = { ...m.usage };
            call.usagePartial = true;
            if (typeof m.usage.service_tier === 'string') call.serviceTier = m.usage.service_tier;
          }
        }
        break;
      }
      case 'message_delta':
        if (typeof event.delta?.stop_reason === 'string') call.finishReasons = [event.delta.stop_reason];
        if (event.usage) {
          applyDeltaUsage(call, event.usage);
          call.usagePartial = false;
        }
        break;
      case 'content_block_start': {
        const b = event.content_block;
        if (b?.type === 'tool_use' && typeof b.name === 'string') call.outputText += b.name;
        break;
      }
    }
    return false;
  },
};

const messagesSpec: MethodSpec = {
  operation: 'chat',
  adapter,
  handler,
  server: anthropicServer,
  requestAttributes(params, options): Attributes {
    const attrs: Attributes = samplingAttributes(params, ['max_tokens']);
    if (typeof params.top_k === 'number') attrs['gen_ai.request.top_k'] = params.top_k;
    captureInput(attrs, options, params.system === undefined ? params.messages : [{ role: 'system', content: params.system }, ...(params.messages ?? [])]);
    return attrs;
  },
};

export function findAnthropicClass(mod: any): any {
  for (const c of [mod, mod?.Anthropic, mod?.default, mod?.default?.Anthropic, mod?.default?.default]) {
    if (typeof c === 'function' && typeof c.Messages?.prototype?.create === 'function' && c.Chat === undefined) return c;
  }
  return undefined;
}

/**
 * Patches `messages.create` and `beta.messages.create`. The `messages.stream()` helpers call `create` on the
 * same resource, so they are covered without a second span.
 */
export function patchAnthropic(mod: unknown): string[] {
  const Anthropic = findAnthropicClass(mod);
  if (Anthropic === undefined) return [];
  const done: string[] = [];
  if (patchMethod(Anthropic.Messages.prototype, 'create', messagesSpec)) done.push('messages.create');
  if (patchMethod(Anthropic.Beta?.Messages?.prototype, 'create', messagesSpec)) done.push('beta.messages.create');
  return done;
}
