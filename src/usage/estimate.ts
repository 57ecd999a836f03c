import { createRequire } from 'node:module';
import type { Tiktoken as TiktokenType } from 'js-tiktoken/lite';

/*
 * Token ESTIMATES with OpenAI's BPE tokenizers (js-tiktoken, pure JS, ranks shipped in the package: nothing is
 * downloaded). Only a labelled fallback for calls whose provider reported no usage, and for the demo's mock
 * provider: an estimate is never presented as a provider count (spans carry tokenmeter.usage.estimated).
 * The rank tables are megabytes and building an encoder takes about a second, so both are loaded lazily,
 * once, on first use: importing tokenmeter must stay cheap for apps that never need an estimate.
 */

type EncodingName = 'o200k_base' | 'cl100k_base';

/**
 * js-tiktoken is an optional peer dependency of the app-side package (its rank tables are 22 MB, two thirds of an
 * app's install for a fallback most apps never need): without it, no estimate can be made. Thrown by the
 * estimate functions; the instrumentation reports it once and leaves the call without usage.
 */
export class EstimateUnavailableError extends Error {
  constructor() {
    super('token estimates need the js-tiktoken package, which is not installed (npm install js-tiktoken)');
    this.name = 'EstimateUnavailableError';
  }
}

const requireCjs = createRequire(import.meta.url);
const encoders = new Map<EncodingName, TiktokenType>();

function encoder(name: EncodingName): TiktokenType {
  let enc = encoders.get(name);
  if (enc === undefined) {
    let lite: typeof import('js-tiktoken/lite');
    let ranks: ConstructorParameters<typeof lite.Tiktoken>[0] & { default?: unknown };
    try {
      lite = requireCjs('js-tiktoken/lite') as typeof lite;
      ranks = requireCjs(`js-tiktoken/ranks/${name}`) as typeof ranks;
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new EstimateUnavailableError();
      throw err;
    }
    const { Tiktoken } = lite;
    enc = new Tiktoken((ranks.default ?? ranks) as ConstructorParameters<typeof Tiktoken>[0]);
    encoders.set(name, enc);
  }
  return enc;
}

/**
 * cl100k_base for the older OpenAI families (gpt-4 / gpt-4-turbo / gpt-3.5, Azure's gpt-35, ada-002 and
 * text-embedding-3); o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series and everything else.
 * For non-OpenAI models no public tokenizer ships with us, so o200k is the (labelled) approximation.
 */
export function estimateEncodingForModel(model?: string): EncodingName {
  if (model === undefined) return 'o200k_base';
  const m = model.toLowerCase().replace(/^.*\//, '');
  if (/^(gpt-4(?![o.])|gpt-3\.5|gpt-35|text-embedding-(ada|3))/.test(m)) return 'cl100k_base';
  return 'o200k_base';
}

/** Estimated token count of a text. Special-token text such as "<|endoftext|>" is counted as plain text. */
export function estimateTokens(text: string, model?: string): number {
  if (text.length === 0) return 0;
  return encoder(estimateEncodingForModel(model)).encode(text, [], []).length;
}

/**
 * OpenAI's documented chat overhead ("How to count tokens with tiktoken", OpenAI cookbook, for gpt-3.5-turbo-0613,
 * gpt-4 and later): every message is wrapped as <|start|>{role}<|message|>{content}<|end|>, i.e. 3 tokens
 * beyond its role and content; a `name` costs 1 token more; and every reply is primed with
 * <|start|>assistant<|message|>, 3 tokens.
 */
export const ESTIMATE_TOKENS_PER_MESSAGE = 3;
export const ESTIMATE_TOKENS_PER_NAME = 1;
export const ESTIMATE_REPLY_PRIMING_TOKENS = 3;

/** Part types whose tokens a text tokenizer cannot estimate (billed by the provider per image / per second). */
const NON_TEXT_PARTS = new Set(['image_url', 'input_image', 'image', 'input_audio', 'audio', 'file', 'input_file', 'document']);

function contentText(content: unknown): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map(contentText).join('');
  if (typeof content === 'object') {
    const part = content as Record<string, unknown>;
    if (typeof part.type === 'string' && NON_TEXT_PARTS.has(part.type)) return '';
    if (typeof part.text === 'string') return part.text;
    // Tool results, function arguments and other structured parts reach the model serialised.
    return JSON.stringify(content) ?? '';
  }
  return String(content);
}

export interface EstimateChatMessage {
  role: string;
  content: unknown;
  name?: string;
}

/**
 * Estimated prompt tokens of a chat request: each message's role, text content and name, plus OpenAI's
 * per-message overhead and the reply priming. Image, audio and file parts are not estimated (0).
 */
export function estimateChatTokens(messages: EstimateChatMessage[], model?: string): number {
  let tokens = ESTIMATE_REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    tokens += ESTIMATE_TOKENS_PER_MESSAGE + estimateTokens(message.role, model) + estimateTokens(contentText(message.content), model);
    if (typeof message.name === 'string' && message.name.length > 0) {
      tokens += ESTIMATE_TOKENS_PER_NAME + estimateTokens(message.name, model);
    }
  }
  return tokens;
}
