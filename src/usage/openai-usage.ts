import { CountReader, clampPart, detailsObject, label, readCount, result, usageObject, type NormalizedUsage } from './counts.js';

interface InclusiveNames {
  what: string;
  input: string;
  inputDetails: string;
  output: string;
  outputDetails: string;
  /** `${inputDetails}.cached_tokens` and `${outputDetails}.reasoning_tokens`, built once. */
  cachedField: string;
  reasoningField: string;
}

function names(what: string, input: string, output: string): InclusiveNames {
  const inputDetails = `${input}_details`;
  const outputDetails = `${output}_details`;
  return { what, input, inputDetails, output, outputDetails, cachedField: `${inputDetails}.cached_tokens`, reasoningField: `${outputDetails}.reasoning_tokens` };
}

const CHAT = names('OpenAI chat', 'prompt_tokens', 'completion_tokens');
const RESPONSES = names('OpenAI responses', 'input_tokens', 'output_tokens');

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
  const cachedField = n.cachedField;
  const reasoningField = n.reasoningField;
  const cachedRaw = r.count(detailsObject(u, n.inputDetails), 'cached_tokens', cachedField) ?? 0;
  const reasoningRaw = r.count(detailsObject(u, n.outputDetails), 'reasoning_tokens', reasoningField) ?? 0;
  const total = readCount(u.total_tokens, 'total_tokens');
  r.requireAny(n.what);

  const warnings: string[] = [];
  const input = inputTotal ?? 0;
  const output = outputTotal ?? 0;
  // The labels only when a part exceeds its total (they are built for the warning).
  const cached = cachedRaw > input ? clampPart(cachedRaw, cachedField, input, label(n.input, inputTotal), warnings) : cachedRaw;
  const reasoning = reasoningRaw > output ? clampPart(reasoningRaw, reasoningField, output, label(n.output, outputTotal), warnings) : reasoningRaw;
  if (total !== undefined && total !== input + output) {
    warnings.push(`total_tokens (${total}) differs from ${n.input} + ${n.output} (${input + output}); using the parts`);
  }
  return result({ input: input - cached, cache_read: cached, cache_write: 0, output: output - reasoning, reasoning }, warnings);
}

/** Chat Completions `usage`: prompt_tokens ⊇ cached_tokens, completion_tokens ⊇ reasoning_tokens. */
export function normalizeOpenAIChatUsage(raw: unknown): NormalizedUsage {
  return normalizeInclusive(raw, CHAT);
}

/** Responses API `usage`: input_tokens ⊇ cached_tokens, output_tokens ⊇ reasoning_tokens. */
export function normalizeOpenAIResponsesUsage(raw: unknown): NormalizedUsage {
  return normalizeInclusive(raw, RESPONSES);
}
