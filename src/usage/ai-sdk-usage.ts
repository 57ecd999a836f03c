import { CountReader, clampPart, detailsObject, label, result, usageObject, type NormalizedUsage } from './counts.js';

/**
 * The usage a Vercel AI SDK model returns from `doGenerate` / `doStream` (its finish part) / `doEmbed`, as the
 * provider package normalised it for the `ai` core.
 *
 * - LanguageModelV3 / V4 (`ai` 6 and 7): `inputTokens: { total, noCache, cacheRead, cacheWrite }` where the total
 *   INCLUDES cache reads and writes (noCache = total - cacheRead - cacheWrite), and
 *   `outputTokens: { total, text, reasoning }` where the total INCLUDES reasoning.
 * - LanguageModelV2 (`ai` 5 providers, still accepted by `ai` 6 and 7): flat `inputTokens` (OpenAI semantics:
 *   includes `cachedInputTokens`), `outputTokens` (includes `reasoningTokens`), `totalTokens`. Anthropic's V2
 *   provider reported its own exclusive `input_tokens` there; `excludesCache` says so.
 * - EmbeddingModel: `{ tokens }`, all input.
 */
export function normalizeAiSdkUsage(raw: unknown, options: { excludesCache?: boolean } = {}): NormalizedUsage {
  const u = usageObject(raw, 'AI SDK');
  if (u.tokens !== undefined && u.inputTokens === undefined) {
    const r = new CountReader();
    const tokens = r.count(u, 'tokens');
    r.requireAny('AI SDK embedding');
    return result({ input: tokens ?? 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, []);
  }
  const warnings: string[] = [];
  const r = new CountReader();
  const nested = u.inputTokens !== null && typeof u.inputTokens === 'object' || u.outputTokens !== null && typeof u.outputTokens === 'object';
  if (nested) {
    const inp = detailsObject(u, 'inputTokens');
    const out = detailsObject(u, 'outputTokens');
    const total = r.count(inp, 'total', 'inputTokens.total');
    const noCache = r.count(inp, 'noCache', 'inputTokens.noCache');
    const cacheRead = r.count(inp, 'cacheRead', 'inputTokens.cacheRead') ?? 0;
    const cacheWrite = r.count(inp, 'cacheWrite', 'inputTokens.cacheWrite') ?? 0;
    const outTotal = r.count(out, 'total', 'outputTokens.total');
    const text = r.count(out, 'text', 'outputTokens.text');
    const reasoningRaw = r.count(out, 'reasoning', 'outputTokens.reasoning') ?? 0;
    r.requireAny('AI SDK');

    let input: number;
    let read = cacheRead;
    let write = cacheWrite;
    if (total !== undefined) {
      read = clampPart(cacheRead, 'inputTokens.cacheRead', total, label('inputTokens.total', total), warnings);
      write = clampPart(cacheWrite, 'inputTokens.cacheWrite', total - read, `inputTokens.total (${total}) less cacheRead`, warnings);
      input = total - read - write;
      if (noCache !== undefined && noCache !== input) {
        warnings.push(`inputTokens.noCache (${noCache}) differs from total - cacheRead - cacheWrite (${input}); using the total`);
      }
    } else {
      input = noCache ?? 0;
    }
    let reasoning = reasoningRaw;
    let output: number;
    if (outTotal !== undefined) {
      reasoning = clampPart(reasoningRaw, 'outputTokens.reasoning', outTotal, label('outputTokens.total', outTotal), warnings);
      output = outTotal - reasoning;
      if (text !== undefined && text !== output) {
        warnings.push(`outputTokens.text (${text}) differs from total - reasoning (${output}); using the total`);
      }
    } else {
      output = text ?? 0;
    }
    return result({ input, cache_read: read, cache_write: write, output, reasoning }, warnings);
  }

  const inputTokens = r.count(u, 'inputTokens');
  const outputTokens = r.count(u, 'outputTokens');
  const cached = r.count(u, 'cachedInputTokens') ?? 0;
  const reasoningTokens = r.count(u, 'reasoningTokens') ?? 0;
  r.requireAny('AI SDK');
  const inputCount = inputTokens ?? 0;
  const outputCount = outputTokens ?? 0;
  const read = options.excludesCache === true ? cached : clampPart(cached, 'cachedInputTokens', inputCount, label('inputTokens', inputTokens), warnings);
  const reasoning = clampPart(reasoningTokens, 'reasoningTokens', outputCount, label('outputTokens', outputTokens), warnings);
  return result(
    {
      input: options.excludesCache === true ? inputCount : inputCount - read,
      cache_read: read,
      cache_write: 0,
      output: outputCount - reasoning,
      reasoning,
    },
    warnings,
  );
}
