import { CountReader, clampPart, invalid, result, usageObject, type NormalizedUsage } from './counts.js';
import type { Usage } from './usage.js';

/**
 * Bedrock Converse / ConverseStream `usage` (TokenUsage). `inputTokens` EXCLUDES cache reads and writes: the
 * AWS prompt-caching guide (docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html) says that with
 * caching enabled `inputTokens` is only the non-cached input and total input = inputTokens +
 * cacheReadInputTokens + cacheWriteInputTokens (quoted in crmne/ruby_llm#832; the same fix landed in LiteLLM
 * and opencode, anomalyco/opencode#38427). So the three are ADDED, like Anthropic's. `outputTokens` does not
 * break reasoning out for any Bedrock model, so `reasoning` is 0.
 * `cacheDetails` (one entry per TTL, `{ inputTokens, ttl: '5m' | '1h' }`) gives the 1-hour part of the writes.
 * Known provider anomaly, not corrected here: maximhq/bifrost#6942 measured ConverseStream for OpenAI-family
 * models reporting an inclusive `inputTokens`; it is indistinguishable from a real count in the payload.
 * Bedrock InvokeModel with a Claude body returns Anthropic's own shape: use normalizeAnthropicUsage for it.
 */
export function normalizeBedrockConverseUsage(raw: unknown): NormalizedUsage {
  const u = usageObject(raw, 'Bedrock Converse');
  const r = new CountReader();
  const input = r.count(u, 'inputTokens') ?? 0;
  const output = r.count(u, 'outputTokens') ?? 0;
  const cacheRead = r.count(u, 'cacheReadInputTokens') ?? 0;
  const cacheWriteField = r.count(u, 'cacheWriteInputTokens');

  let detailsSum = 0;
  let oneHour = 0;
  const details = u.cacheDetails;
  if (details !== undefined && details !== null) {
    if (!Array.isArray(details)) throw invalid('cacheDetails', 'is not an array', details);
    details.forEach((entry: unknown, i) => {
      const field = `cacheDetails[${i}]`;
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw invalid(field, 'is not an object', entry);
      const e = entry as Record<string, unknown>;
      const n = r.count(e, 'inputTokens', `${field}.inputTokens`) ?? 0;
      detailsSum += n;
      if (e.ttl === '1h') oneHour += n;
    });
  }
  r.requireAny('Bedrock Converse');

  const warnings: string[] = [];
  const cacheWrite = cacheWriteField ?? detailsSum;
  oneHour = clampPart(oneHour, 'cacheDetails 1h inputTokens', cacheWrite, `cacheWriteInputTokens (${cacheWrite})`, warnings);
  const usage: Usage = { input, cache_read: cacheRead, cache_write: cacheWrite, output, reasoning: 0 };
  if (oneHour !== 0) usage.cache_write_1h = oneHour;
  return result(usage, warnings);
}
