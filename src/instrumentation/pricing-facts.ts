import type { Attributes } from '@opentelemetry/api';
import { ATTR_INFERENCE_GEO, ATTR_INPUT_AUDIO_TOKENS, ATTR_OUTPUT_AUDIO_TOKENS, ATTR_SPEED } from '../contract/names.js';
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

/** Anthropic Messages usage: `speed` ("standard" | "fast", as billed) and `inference_geo` ("global", "us", ...). */
export function anthropicPricingAttributes(raw: unknown): Attributes {
  const out: Attributes = {};
  if (raw === null || typeof raw !== 'object') return out;
  const u = raw as Record<string, unknown>;
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
