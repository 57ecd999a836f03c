import { ATTR_CACHE_CREATION_1H, GENAI } from '../contract/names.js';
import { CountReader, clampPart, label, result, usageObject, type NormalizedUsage } from './counts.js';
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
  const r = new CountReader(true);
  const warnings: string[] = [];
  const current = (name: string, deprecated: string): { value: number | undefined; field: string } => {
    const now = r.count(a, name);
    const old = r.count(a, deprecated);
    if (now !== undefined && old !== undefined && now !== old) {
      warnings.push(`${deprecated} (${old}) differs from ${name} (${now}); using ${name}`);
    }
    return now !== undefined || old === undefined ? { value: now, field: name } : { value: old, field: deprecated };
  };
  const inTotal = current(GENAI.inputTokens, GENAI.deprecatedPromptTokens);
  const outTotal = current(GENAI.outputTokens, GENAI.deprecatedCompletionTokens);
  const cacheReadRaw = r.count(a, GENAI.cacheReadInputTokens) ?? 0;
  const cacheWriteRaw = r.count(a, GENAI.cacheCreationInputTokens) ?? 0;
  const reasoningRaw = r.count(a, GENAI.reasoningOutputTokens) ?? 0;
  const oneHourRaw = r.count(a, ATTR_CACHE_CREATION_1H) ?? 0;
  r.requireAny('GenAI span');

  const input = inTotal.value ?? 0;
  const output = outTotal.value ?? 0;
  const inLabel = label(inTotal.field, inTotal.value);
  const cacheRead = clampPart(cacheReadRaw, GENAI.cacheReadInputTokens, input, inLabel, warnings);
  const cacheWrite = clampPart(
    cacheWriteRaw,
    GENAI.cacheCreationInputTokens,
    input - cacheRead,
    `${inLabel} minus ${GENAI.cacheReadInputTokens} (${cacheRead})`,
    warnings,
  );
  const reasoning = clampPart(reasoningRaw, GENAI.reasoningOutputTokens, output, label(outTotal.field, outTotal.value), warnings);
  const oneHour = clampPart(oneHourRaw, ATTR_CACHE_CREATION_1H, cacheWrite, `${GENAI.cacheCreationInputTokens} (${cacheWrite})`, warnings);
  return result(
    { input: input - cacheRead - cacheWrite, cache_read: cacheRead, cache_write: cacheWrite, output: output - reasoning, reasoning, cache_write_1h: oneHour },
    warnings,
  );
}

/**
 * The inverse: the usage attributes the instrumentation writes on a span, per the conventions above.
 * Totals are always written; the detail attributes only when non-zero.
 */
export function usageToGenAiAttributes(usage: Usage): Record<string, number> {
  const out: Record<string, number> = {
    [GENAI.inputTokens]: usage.input + usage.cache_read + usage.cache_write,
    [GENAI.outputTokens]: usage.output + usage.reasoning,
  };
  if (usage.cache_read > 0) out[GENAI.cacheReadInputTokens] = usage.cache_read;
  if (usage.cache_write > 0) out[GENAI.cacheCreationInputTokens] = usage.cache_write;
  if (usage.reasoning > 0) out[GENAI.reasoningOutputTokens] = usage.reasoning;
  if ((usage.cache_write_1h ?? 0) > 0) out[ATTR_CACHE_CREATION_1H] = usage.cache_write_1h as number;
  return out;
}
