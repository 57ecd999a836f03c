import type { Attributes } from '@opentelemetry/api';
import { ATTR_INFERENCE_GEO, ATTR_INPUT_AUDIO_TOKENS, ATTR_OUTPUT_AUDIO_TOKENS, ATTR_SPEED, ATTR_TOOL_CALLS, type FeeKind } from '../contract/names.js';
import type { Usage } from '../usage/index.js';

/*
 * Facts in a provider's usage object that change the price of the same tokens, put on the span as the
 * tokenmeter.* attributes the exporter prices from (src/ingest/extract.ts, src/pricing/processing.ts): Anthropic's
 * fast mode and processing location, OpenAI's audio parts of the input and output buckets. Only what the provider
 * itself reported; a value that does not fit is left out with a warning on the span, never guessed.
 */

const MAX_LABEL_LENGTH = 64;

function label(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_LABEL_LENGTH && !/[\p{Cc}\p{Cf}]/u.test(v) ? v : undefined;
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

function details(u: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const d = u[key];
  return d !== null && typeof d === 'object' ? (d as Record<string, unknown>) : undefined;
}

/**
 * Anthropic Messages usage: `speed` ("standard" | "fast", as billed), `inference_geo` ("global", "us", ...) and
 * `server_tool_use.web_search_requests` (web searches, billed per search; web fetches have no fee).
 */
export function anthropicPricingAttributes(raw: unknown, _usage?: Usage, warnings?: string[]): Attributes {
  const out: Attributes = {};
  if (raw === null || typeof raw !== 'object') return out;
  const u = raw as Record<string, unknown>;
  const searches = details(u, 'server_tool_use')?.web_search_requests;
  if (searches !== undefined && searches !== null && searches !== 0) {
    const n = count(searches);
    if (n !== undefined) out[ATTR_TOOL_CALLS.web_search] = n;
    else warnings?.push(`server_tool_use.web_search_requests (${String(searches).slice(0, 32)}) is not a count of searches; left out`);
  }
  const speed = label(u.speed);
  if (speed !== undefined) out[ATTR_SPEED] = speed;
  const geo = label(u.inference_geo);
  if (geo !== undefined) out[ATTR_INFERENCE_GEO] = geo;
  return out;
}

/**
 * OpenAI usage: `audio_tokens` in the input and output details are parts of prompt_tokens / completion_tokens
 * (audio has its own, higher rate). The exporter prices them as parts of the uncached input and of the non-reasoning
 * output; a part larger than its bucket (audio read from the cache, which has no rate of its own here) is clamped
 * to the bucket and said on the span.
 */
export function openAIPricingAttributes(raw: unknown, usage: Usage, warnings: string[], inputDetails: string, outputDetails: string): Attributes {
  const out: Attributes = {};
  if (raw === null || typeof raw !== 'object') return out;
  const u = raw as Record<string, unknown>;
  const inAudio = count(details(u, inputDetails)?.audio_tokens);
  if (inAudio !== undefined) {
    if (inAudio > usage.input) warnings.push(`${inputDetails}.audio_tokens (${inAudio}) exceeds the uncached input tokens (${usage.input}); priced ${usage.input} as audio`);
    if (usage.input > 0) out[ATTR_INPUT_AUDIO_TOKENS] = Math.min(inAudio, usage.input);
  }
  const outAudio = count(details(u, outputDetails)?.audio_tokens);
  if (outAudio !== undefined) {
    if (outAudio > usage.output) warnings.push(`${outputDetails}.audio_tokens (${outAudio}) exceeds the output tokens (${usage.output}); priced ${usage.output} as audio`);
    if (usage.output > 0) out[ATTR_OUTPUT_AUDIO_TOKENS] = Math.min(outAudio, usage.output);
  }
  return out;
}

/**
 * OpenAI Responses: each `web_search_call` output item is one billed search call (a failed one is not billed).
 * The item does not say which tool ran it: it is a `web_search_preview` call when the request offered only the
 * preview tool (priced differently on non-reasoning models), else a `web_search` call.
 */
export function openAIResponsesToolCalls(output: unknown, requestTools: unknown): Partial<Record<FeeKind, number>> | undefined {
  if (!Array.isArray(output)) return undefined;
  let n = 0;
  for (const item of output) {
    if (item !== null && typeof item === 'object' && (item as { type?: unknown }).type === 'web_search_call' && (item as { status?: unknown }).status !== 'failed') n++;
  }
  if (n === 0) return undefined;
  let preview = false;
  let ga = false;
  if (Array.isArray(requestTools)) {
    for (const t of requestTools) {
      const type = (t as { type?: unknown } | null)?.type;
      if (typeof type !== 'string') continue;
      if (type.startsWith('web_search_preview')) preview = true;
      else if (type.startsWith('web_search')) ga = true;
    }
  }
  return preview && !ga ? { web_search_preview: n } : { web_search: n };
}

/**
 * Gemini grounding with Google Search: the distinct non-empty `groundingMetadata.webSearchQueries` of the
 * response's candidates, added to `seen` (a stream repeats or spreads them over chunks). Google bills Gemini 3
 * per search query and ignores empty queries when counting.
 */
export function geminiGroundingQueries(response: unknown, seen: Set<string>): void {
  const candidates = (response as { candidates?: unknown } | null)?.candidates;
  if (!Array.isArray(candidates)) return;
  for (const c of candidates) {
    const queries = (c as { groundingMetadata?: { webSearchQueries?: unknown } } | null)?.groundingMetadata?.webSearchQueries;
    if (!Array.isArray(queries)) continue;
    for (const q of queries) if (typeof q === 'string' && q.trim() !== '' && seen.size < 10_000) seen.add(q);
  }
}
