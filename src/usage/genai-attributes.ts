import { ATTR_CACHE_CREATION_1H, GENAI } from '../contract/names.js';
import { UsageError, clampPart, label, readCount, result, usageObject, type NormalizedUsage } from './counts.js';
import type { Usage } from './usage.js';

/*
 * OTel GenAI semantic conventions, as shipped in @opentelemetry/semantic-conventions 1.45.0
 * (experimental_attributes, ATTR_GEN_AI_USAGE_*; the GenAI conventions now live in the
 * open-telemetry/semantic-conventions-genai repository):
 * - gen_ai.usage.input_tokens: "SHOULD include all types of input tokens, including cached tokens";
 * - gen_ai.usage.cache_read.input_tokens and gen_ai.usage.cache_creation.input_tokens: "SHOULD be included
 *   in gen_ai.usage.input_tokens";
 * - gen_ai.usage.reasoning.output_tokens: "SHOULD be included in gen_ai.usage.output_tokens";
 * - gen_ai.usage.prompt_tokens / gen_ai.usage.completion_tokens: deprecated, replaced by input_tokens /
 *   output_tokens (same meaning; read only when the current name is absent).
 * tokenmeter adds tokenmeter.usage.cache_creation.1h.input_tokens, the 1-hour part of the cache writes.
 */

/**
 * Reads the usage attributes of a GenAI span. Values may be numbers, bigints or integer strings (OTLP/JSON
 * encodes int64 as a string). The subsets are subtracted from their totals, and clamped with a warning when
 * larger (e.g. an instrumentation that follows Anthropic's exclusive `input_tokens` instead of the spec).
 */
export function normalizeGenAiAttributes(attrs: Record<string, unknown>): NormalizedUsage {
  const a = usageObject(attrs, 'GenAI span');
  // Read in this order (the first unusable one is the error), as a CountReader would; written out because
  // every span goes through here.
  const inNow = readCount(a[GENAI.inputTokens], GENAI.inputTokens, true);
  const inOld = readCount(a[GENAI.deprecatedPromptTokens], GENAI.deprecatedPromptTokens, true);
  const outNow = readCount(a[GENAI.outputTokens], GENAI.outputTokens, true);
  const outOld = readCount(a[GENAI.deprecatedCompletionTokens], GENAI.deprecatedCompletionTokens, true);
  const cacheReadRaw = readCount(a[GENAI.cacheReadInputTokens], GENAI.cacheReadInputTokens, true);
  const cacheWriteRaw = readCount(a[GENAI.cacheCreationInputTokens], GENAI.cacheCreationInputTokens, true);
  const reasoningRaw = readCount(a[GENAI.reasoningOutputTokens], GENAI.reasoningOutputTokens, true);
  const oneHourRaw = readCount(a[ATTR_CACHE_CREATION_1H], ATTR_CACHE_CREATION_1H, true);
  if (
    inNow === undefined &&
    inOld === undefined &&
    outNow === undefined &&
    outOld === undefined &&
    cacheReadRaw === undefined &&
    cacheWriteRaw === undefined &&
    reasoningRaw === undefined &&
    oneHourRaw === undefined
  ) {
    throw new UsageError('usage', NO_COUNTS);
  }
  const warnings: string[] = [];
  if (inNow !== undefined && inOld !== undefined && inNow !== inOld) {
    warnings.push(`${GENAI.deprecatedPromptTokens} (${inOld}) differs from ${GENAI.inputTokens} (${inNow}); using ${GENAI.inputTokens}`);
  }
  if (outNow !== undefined && outOld !== undefined && outNow !== outOld) {
    warnings.push(`${GENAI.deprecatedCompletionTokens} (${outOld}) differs from ${GENAI.outputTokens} (${outNow}); using ${GENAI.outputTokens}`);
  }
  // The current name wins; the deprecated one is read only when the current one is absent.
  const inUsesOld = inNow === undefined && inOld !== undefined;
  const outUsesOld = outNow === undefined && outOld !== undefined;
  const inValue = inUsesOld ? inOld : inNow;
  const outValue = outUsesOld ? outOld : outNow;
  const input = inValue ?? 0;
  const output = outValue ?? 0;
  // Labels for the clamp warnings, only written when a part exceeds its total.
  const inLabel = () => label(inUsesOld ? GENAI.deprecatedPromptTokens : GENAI.inputTokens, inValue);
  let cacheRead = cacheReadRaw ?? 0;
  if (cacheRead > input) cacheRead = clampPart(cacheRead, GENAI.cacheReadInputTokens, input, inLabel(), warnings);
  let cacheWrite = cacheWriteRaw ?? 0;
  if (cacheWrite > input - cacheRead) {
    cacheWrite = clampPart(cacheWrite, GENAI.cacheCreationInputTokens, input - cacheRead, `${inLabel()} minus ${GENAI.cacheReadInputTokens} (${cacheRead})`, warnings);
  }
  let reasoning = reasoningRaw ?? 0;
  if (reasoning > output) {
    reasoning = clampPart(reasoning, GENAI.reasoningOutputTokens, output, label(outUsesOld ? GENAI.deprecatedCompletionTokens : GENAI.outputTokens, outValue), warnings);
  }
  let oneHour = oneHourRaw ?? 0;
  if (oneHour > cacheWrite) oneHour = clampPart(oneHour, ATTR_CACHE_CREATION_1H, cacheWrite, `${GENAI.cacheCreationInputTokens} (${cacheWrite})`, warnings);
  const usage: Usage = { input: input - cacheRead - cacheWrite, cache_read: cacheRead, cache_write: cacheWrite, output: output - reasoning, reasoning };
  if (oneHour !== 0) usage.cache_write_1h = oneHour;
  return result(usage, warnings);
}

/** CountReader's message for a span with none of the fields above. */
const NO_COUNTS = `GenAI span usage has no token counts (none of ${[
  GENAI.inputTokens,
  GENAI.deprecatedPromptTokens,
  GENAI.outputTokens,
  GENAI.deprecatedCompletionTokens,
  GENAI.cacheReadInputTokens,
  GENAI.cacheCreationInputTokens,
  GENAI.reasoningOutputTokens,
  ATTR_CACHE_CREATION_1H,
].join(', ')})`;

/**
 * The inverse: the usage attributes the instrumentation writes on a span, per the conventions above.
 * Totals are always written; the detail attributes only when non-zero.
 */
export function usageToGenAiAttributes<T extends Record<string, unknown> = Record<string, number>>(usage: Usage, out: T = {} as T): T {
  // Written into `out` when given (the instrumentation's span attributes: no object per call to merge).
  const o = out as Record<string, unknown>;
  o[GENAI.inputTokens] = usage.input + usage.cache_read + usage.cache_write;
  o[GENAI.outputTokens] = usage.output + usage.reasoning;
  if (usage.cache_read > 0) o[GENAI.cacheReadInputTokens] = usage.cache_read;
  if (usage.cache_write > 0) o[GENAI.cacheCreationInputTokens] = usage.cache_write;
  if (usage.reasoning > 0) o[GENAI.reasoningOutputTokens] = usage.reasoning;
  if ((usage.cache_write_1h ?? 0) > 0) o[ATTR_CACHE_CREATION_1H] = usage.cache_write_1h as number;
  return out;
}
