import { CountReader, clampPart, label, readCount, result, usageObject, type NormalizedUsage } from './counts.js';

/** camelCase (REST / JS SDKs) and snake_case (Python SDK, some Vertex JSON) spellings of the same fields. */
const FIELDS = {
  prompt: ['promptTokenCount', 'prompt_token_count'],
  cached: ['cachedContentTokenCount', 'cached_content_token_count'],
  candidates: ['candidatesTokenCount', 'candidates_token_count'],
  thoughts: ['thoughtsTokenCount', 'thoughts_token_count'],
  toolUse: ['toolUsePromptTokenCount', 'tool_use_prompt_token_count'],
  total: ['totalTokenCount', 'total_token_count'],
} as const;

/**
 * Gemini `usageMetadata` (Gemini API and Vertex AI):
 * - `promptTokenCount` INCLUDES `cachedContentTokenCount` (documented: "when cached_content is set, this is
 *   still the total effective prompt size"), so cached tokens are subtracted into `cache_read`;
 * - `candidatesTokenCount` EXCLUDES `thoughtsTokenCount`, so thoughts are `reasoning` as they are;
 * - `toolUsePromptTokenCount` (results of built-in tools such as Google Search or code execution fed back to
 *   the model) is NOT part of `promptTokenCount`: `totalTokenCount` = prompt + candidates + toolUsePrompt +
 *   thoughts, e.g. the payload in QuantumNous/new-api#2935 (151 + 1089 + 18329 + 1120 = 20689). It is input
 *   the model read and is billed at the input rate, so it is ADDED to `input` (never to output).
 * Gemini reports no per-call cache writes: explicit cache storage is billed per hour, outside a call.
 */
export function normalizeGeminiUsage(raw: unknown): NormalizedUsage {
  const u = usageObject(raw, 'Gemini');
  const r = new CountReader();
  const read = ([camel, snake]: readonly [string, string]): { value: number | undefined; field: string } => {
    const value = r.count(u, camel);
    if (value !== undefined) return { value, field: camel };
    return { value: r.count(u, snake), field: u[snake] !== undefined && u[snake] !== null ? snake : camel };
  };
  const prompt = read(FIELDS.prompt);
  const cached = read(FIELDS.cached);
  const candidates = read(FIELDS.candidates);
  const thoughts = read(FIELDS.thoughts);
  const toolUse = read(FIELDS.toolUse);
  const totalField = u[FIELDS.total[0]] !== undefined && u[FIELDS.total[0]] !== null ? FIELDS.total[0] : FIELDS.total[1];
  const total = readCount(u[totalField], totalField);
  r.requireAny('Gemini');

  const warnings: string[] = [];
  const promptCount = prompt.value ?? 0;
  const cacheRead = clampPart(cached.value ?? 0, cached.field, promptCount, label(prompt.field, prompt.value), warnings);
  const usage = {
    input: promptCount - cacheRead + (toolUse.value ?? 0),
    cache_read: cacheRead,
    cache_write: 0,
    output: candidates.value ?? 0,
    reasoning: thoughts.value ?? 0,
  };
  const sum = promptCount + (toolUse.value ?? 0) + usage.output + usage.reasoning;
  if (total !== undefined && total !== sum) {
    warnings.push(
      `${totalField} (${total}) differs from prompt + toolUsePrompt + candidates + thoughts (${sum}); using the parts`,
    );
  }
  return result(usage, warnings);
}
