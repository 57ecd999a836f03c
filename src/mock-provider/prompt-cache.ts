import { createHash } from 'node:crypto';
import { ESTIMATE_REPLY_PRIMING_TOKENS, estimateChatTokens, type EstimateChatMessage } from '../usage/index.js';

/*
 * The mock provider's simulation of the providers' prompt caches, deterministic and in memory (one per mock
 * instance). Every count is a tokenizer count of the prompt text (tokenmeter's estimate, the same one the mock
 * uses for uncached input), so `input + cache_read + cache_write` is the prompt's token count.
 */

/** The most prefixes one mock remembers; the oldest is evicted first (real caches evict too). */
const MAX_ENTRIES = 20_000;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Tokens a list of messages adds to a prompt (the reply priming is counted once per prompt, not per prefix). */
function prefixTokens(messages: EstimateChatMessage[], model?: string): number {
  return estimateChatTokens(messages, model) - ESTIMATE_REPLY_PRIMING_TOKENS;
}

/** A message's identity for a cache key: role, name and content without `cache_control` markers. */
function keyOf(message: EstimateChatMessage): string {
  return JSON.stringify([message.role, message.name ?? null, message.content ?? null], (k, v: unknown) => (k === 'cache_control' ? undefined : v));
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_ENTRIES) map.delete(map.keys().next().value as string);
}

// --- OpenAI: automatic prefix caching ------------------------------------------------------------------------

/*
 * OpenAI caches automatically for prompts of 1024 tokens or more, "with cache hits occurring in increments of
 * 128 tokens" (OpenAI cookbook, "Prompt Caching 201", §1.1 Basics; the platform's prompt-caching guide says the
 * same). `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens`.
 * Simplification: the mock matches prefixes message by message (a shared long system prompt is the common case),
 * then rounds the shared token count down to 1024 + k * 128.
 */
export const OPENAI_MIN_CACHED_TOKENS = 1024;
export const OPENAI_CACHE_INCREMENT_TOKENS = 128;

/** The largest cache hit OpenAI reports for `sharedTokens` tokens of a prefix seen before. */
export function openAICachedTokens(sharedTokens: number): number {
  if (sharedTokens < OPENAI_MIN_CACHED_TOKENS) return 0;
  return OPENAI_MIN_CACHED_TOKENS + Math.floor((sharedTokens - OPENAI_MIN_CACHED_TOKENS) / OPENAI_CACHE_INCREMENT_TOKENS) * OPENAI_CACHE_INCREMENT_TOKENS;
}

export interface OpenAIPromptCount {
  /** `prompt_tokens` / `input_tokens`: the whole prompt, cached part included. */
  promptTokens: number;
  cachedTokens: number;
}

export class OpenAIPrefixCache {
  private readonly seen = new Map<string, true>();

  /** Counts a prompt, reports the cached part of it, and remembers its prefixes for later requests. */
  count(model: string, messages: EstimateChatMessage[]): OpenAIPromptCount {
    let hash = sha256(`openai\n${model}`);
    let tokens = 0;
    let shared = 0;
    let matching = true;
    const keys: string[] = [];
    for (const message of messages) {
      hash = sha256(`${hash}\n${keyOf(message)}`);
      tokens += prefixTokens([message], model);
      if (matching && this.seen.has(hash)) shared = tokens;
      else matching = false;
      keys.push(hash);
    }
    for (const k of keys) remember(this.seen, k, true);
    const promptTokens = tokens + ESTIMATE_REPLY_PRIMING_TOKENS;
    return { promptTokens, cachedTokens: Math.min(openAICachedTokens(shared), promptTokens) };
  }

  clear(): void {
    this.seen.clear();
  }
}

// --- Anthropic: explicit cache breakpoints ---------------------------------------------------------------------

/*
 * Minimum cacheable prompt length per model (Anthropic's prompt-caching guide, "Cache limitations", as quoted in
 * anthropics/anthropic-sdk-python issue #1194): 4096 tokens for Claude Opus 4.5/4.6 and Haiku 4.5; 2048 for
 * Claude Haiku 3.5 and Haiku 3 (and Sonnet 4.6); 1024 for Sonnet 4.5, Opus 4.1, Opus 4, Sonnet 4, Sonnet 3.7 and
 * the other models. A shorter prefix is processed uncached even when marked with `cache_control`.
 */
export function anthropicMinCacheableTokens(model: string): number {
  const m = model.toLowerCase().replace(/^.*\//, '');
  if (/opus-4-[56]|haiku-4-5/.test(m)) return 4096;
  if (/3-5-haiku|3-haiku|haiku-3|sonnet-4-6/.test(m)) return 2048;
  return 1024;
}

export type AnthropicCacheTtl = '5m' | '1h';
const TTL_MILLIS: Record<AnthropicCacheTtl, number> = { '5m': 5 * 60_000, '1h': 60 * 60_000 };

export interface AnthropicPromptCount {
  /** `input_tokens`: after the last cache breakpoint (or everything when nothing is cached). */
  input: number;
  cacheRead: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
}

interface Breakpoint {
  key: string;
  tokens: number;
  ttl: AnthropicCacheTtl;
}

function ttlOf(cacheControl: unknown): AnthropicCacheTtl | undefined {
  if (cacheControl === null || typeof cacheControl !== 'object') return undefined;
  const cc = cacheControl as { type?: unknown; ttl?: unknown };
  if (cc.type !== 'ephemeral') return undefined;
  return cc.ttl === '1h' ? '1h' : '5m';
}

function blocksOf(content: unknown): unknown[] {
  if (Array.isArray(content)) return content;
  return content === undefined || content === null ? [] : [content];
}

export class AnthropicPromptCache {
  /** Cache entry (hash of model + prefix) → expiry time in the mock's clock. */
  private readonly entries = new Map<string, number>();

  constructor(private readonly nowMillis: () => number) {}

  /**
   * Counts an Anthropic prompt (`system` first, then the messages) the way the API reports it: the prefix up to
   * and including a block with `cache_control` is a cache entry; the longest entry already cached is read, the
   * rest up to the last breakpoint is written (split by the TTL of the breakpoint that ends each part), and
   * only what follows the last breakpoint is `input_tokens`. A top-level `cache_control` (automatic caching)
   * marks the last block.
   */
  count(model: string, messages: EstimateChatMessage[], topLevelCacheControl?: unknown): AnthropicPromptCount {
    const total = estimateChatTokens(messages);
    const min = anthropicMinCacheableTokens(model);
    const breakpoints: Breakpoint[] = [];
    const automatic = ttlOf(topLevelCacheControl);
    messages.forEach((message, mi) => {
      const blocks = blocksOf(message.content);
      blocks.forEach((block, bi) => {
        const isLast = mi === messages.length - 1 && bi === blocks.length - 1;
        const ttl = ttlOf((block as { cache_control?: unknown } | null)?.cache_control) ?? (isLast ? automatic : undefined);
        if (ttl === undefined) return;
        const content = Array.isArray(message.content) ? blocks.slice(0, bi + 1) : message.content;
        const prefix = [...messages.slice(0, mi), { ...message, content }];
        const tokens = prefixTokens(prefix);
        // Too short to be cached: the breakpoint is ignored.
        if (tokens < min) return;
        breakpoints.push({ key: sha256(`anthropic\n${model}\n${prefix.map(keyOf).join('\n')}`), tokens, ttl });
      });
    });
    if (breakpoints.length === 0) return { input: total, cacheRead: 0, cacheWrite5m: 0, cacheWrite1h: 0 };

    const now = this.nowMillis();
    let read = -1;
    breakpoints.forEach((bp, i) => {
      const expires = this.entries.get(bp.key);
      if (expires !== undefined && expires > now) read = i;
    });
    const cacheRead = read >= 0 ? breakpoints[read].tokens : 0;
    let cacheWrite5m = 0;
    let cacheWrite1h = 0;
    let covered = cacheRead;
    for (let i = read + 1; i < breakpoints.length; i++) {
      const part = Math.max(0, breakpoints[i].tokens - covered);
      if (breakpoints[i].ttl === '1h') cacheWrite1h += part;
      else cacheWrite5m += part;
      covered = Math.max(covered, breakpoints[i].tokens);
    }
    // Written entries start their TTL; entries read are refreshed ("5 minutes from last use").
    for (const bp of breakpoints) remember(this.entries, bp.key, Math.max(this.entries.get(bp.key) ?? 0, now + TTL_MILLIS[bp.ttl]));
    return { input: Math.max(0, total - covered), cacheRead, cacheWrite5m, cacheWrite1h };
  }

  clear(): void {
    this.entries.clear();
  }
}
