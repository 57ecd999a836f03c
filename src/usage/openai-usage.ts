import { CountReader, clampPart, detailsObject, label, readCount, result, usageObject, type NormalizedUsage } from './counts.js';

interface InclusiveNames {
  what: string;
  input: string;
  inputDetails: string;
  output: string;
  outputDetails: string;
}

/**
 * OpenAI's subset rules, shared by both APIs: cached tokens are part of the input total and reasoning tokens
 * part of the output total, so both are SUBTRACTED. OpenAI reports no cache writes (its caching is automatic
 * and writes are not billed). Other details (audio, accepted/rejected prediction tokens) are also subsets of
 * the totals; they have no bucket of their own and stay in input/output, so no token is lost.
 */
function normalizeInclusive(raw: unknown, n: InclusiveNames): NormalizedUsage {
  const u = usageObject(raw, n.what);
  const r = new CountReader();
  const inputTotal = r.count(u, n.input);
  const outputTotal = r.count(u, n.output);
  const cachedField = `${n.inputDetails}.cached_tokens`;
  const reasoningField = `${n.outputDetails}.reasoning_tokens`;
  const cachedRaw = r.count(detailsObject(u, n.inputDetails), 'cached_tokens', cachedField) ?? 0;
  const reasoningRaw = r.count(detailsObject(u, n.outputDetails), 'reasoning_tokens', reasoningField) ?? 0;
  const total = readCount(u.total_tokens, 'total_tokens');
  r.requireAny(n.what);

  const warnings: string[] = [];
  const input = inputTotal ?? 0;
  const output = outputTotal ?? 0;
  const cached = clampPart(cachedRaw, cachedField, input, label(n.input, inputTotal), warnings);
  const reasoning = clampPart(reasoningRaw, reasoningField, output, label(n.output, outputTotal), warnings);
  if (total !== undefined && total !== input + output) {
    warnings.push(`total_tokens (${total}) differs from ${n.input} + ${n.output} (${input + output}); using the parts`);
  }
  return result({ input: input - cached, cache_read: cached, cache_write: 0, output: output - reasoning, reasoning }, warnings);
}

/** Chat Completions `usage`: prompt_tokens ⊇ cached_tokens, completion_tokens ⊇ reasoning_tokens. */
export function normalizeOpenAIChatUsage(raw: unknown): NormalizedUsage {
  return normalizeInclusive(raw, {
    what: 'OpenAI chat',
    input: 'prompt_tokens',
    inputDetails: 'prompt_tokens_details',
    output: 'completion_tokens',
    outputDetails: 'completion_tokens_details',
  });
}

/** Responses API `usage`: input_tokens ⊇ cached_tokens, output_tokens ⊇ reasoning_tokens. */
export function normalizeOpenAIResponsesUsage(raw: unknown): NormalizedUsage {
  return normalizeInclusive(raw, {
    what: 'OpenAI responses',
    input: 'input_tokens',
    inputDetails: 'input_tokens_details',
    output: 'output_tokens',
    outputDetails: 'output_tokens_details',
  });
}
