import {
  ANONYMOUS_USER,
  ATTR_CACHE_CREATION_1H,
  ATTR_ERROR_TYPE,
  ATTR_FEATURE,
  ATTR_PLAN,
  ATTR_INFERENCE_GEO,
  ATTR_INPUT_AUDIO_TOKENS,
  ATTR_OUTPUT_AUDIO_TOKENS,
  ATTR_OUTPUT_IMAGE_TOKENS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVICE_TIER,
  ATTR_SPEED,
  ATTR_TOOL_CALLS,
  ATTR_USAGE_ESTIMATED,
  ATTR_USER_ID,
  FEE_KINDS,
  GENAI,
} from '../contract/names.js';
import {
  MAX_PLAUSIBLE_TOKENS,
  normalizeAnthropicUsage,
  normalizeGeminiUsage,
  normalizeGenAiAttributes,
  UsageError,
  zeroUsage,
  type NormalizedUsage,
  type Usage,
} from '../usage/index.js';
import { RESERVED_USER_IDS, recordTextProblem, userIdProblem } from '../usage/record-text.js';
import type { UsageRecord, UsageSource } from '../usage/usage-record.js';
import { normalizeProvider } from './providers.js';
import type { AttributeMap, AttributeValue, DecodedSpan } from './types.js';

/**
 * Usage extraction from the spans of any GenAI instrumentation: tokenmeter's own, the OTel GenAI conventions
 * (current and deprecated names), OpenLLMetry, the Vercel AI SDK and OpenInference. Each convention's counts
 * are handed, with that convention's overlap rules, to one of the normalisers of src/usage, which split them
 * into the five non-overlapping buckets. Never throws.
 *
 * Overlap rules by convention (the single most common bug is getting these wrong):
 * - OTel GenAI (and tokenmeter, OTel contrib, OpenLLMetry Python, OpenLLMetry JS for OpenAI): input tokens
 *   INCLUDE cache reads and writes, output tokens INCLUDE reasoning.
 * - OpenLLMetry JS for Anthropic (@traceloop/instrumentation-anthropic, up to 0.27 at least) writes
 *   Anthropic's own `input_tokens` into gen_ai.usage.input_tokens (older versions: gen_ai.usage.prompt_tokens),
 *   which EXCLUDES cache reads and writes (reported in gen_ai.usage.cache_read(_|.)input_tokens and
 *   gen_ai.usage.cache_creation(_|.)input_tokens). OpenLLMetry Python sums them into input_tokens instead.
 *   So Anthropic spans from a `@traceloop/` scope are read with Anthropic's exclusive rule.
 * - Any convention: when a reported total equals input + output + cache reads + cache writes (with cache
 *   tokens present), the input was exclusive whatever the default says (seen in strands-agents spans).
 * - Vercel AI SDK 6 (`ai.usage.inputTokenDetails.*`): inputTokens is the total including cache, outputTokens
 *   includes reasoning. AI SDK 5 (`ai.usage.inputTokens`): per provider, as the provider package reported
 *   it: Anthropic's inputTokens excludes cache reads (`ai.usage.cachedInputTokens`) and writes (only in
 *   `ai.response.providerMetadata`); Google's outputTokens excludes reasoning (detected by the total).
 *   AI SDK 4 (`ai.usage.promptTokens`): likewise; cache and reasoning details only in providerMetadata.
 *   Only the leaf model call (ai.generateText.doGenerate, ai.streamText.doStream, ...) is priced; the
 *   parent (ai.generateText) sums its steps and is ignored.
 * - OpenInference: llm.token_count.prompt includes prompt_details.cache_read and cache_write,
 *   llm.token_count.completion includes completion_details.reasoning. Only LLM and EMBEDDING spans are
 *   priced (CHAIN / AGENT spans may aggregate their children).
 *
 * An errored call (span status ERROR or error.type) with usage is priced as reported; one without any usage
 * becomes a record with zero usage and outcome `error`, so that requests_total counts the failed request.
 * A successful model call with no usage at all is rejected (`missing_usage`): pricing it as free would hide
 * an instrumentation that lost its counts (e.g. a stream without usage).
 */

export type RejectReason =
  | 'invalid_id'
  | 'invalid_usage'
  | 'implausible_usage'
  | 'missing_usage'
  | 'missing_model'
  | 'invalid_attribute'
  | 'reserved_user_id';

export type ExtractResult =
  | { kind: 'usage'; record: UsageRecord; warnings: string[] }
  | { kind: 'ignored' }
  | { kind: 'rejected'; reason: RejectReason; message: string };

const IGNORED: ExtractResult = { kind: 'ignored' };

/** Attribution and model strings longer than this are rejected rather than truncated (truncation could merge users). */
export const MAX_LABEL_CHARS = 256;
/** Largest `ai.response.providerMetadata` JSON read for cache details. */
const MAX_PROVIDER_METADATA_CHARS = 64 * 1024;

/** GenAI operations that are not a model call: they may carry usage summed over their children. */
const NON_MODEL_OPERATIONS = new Set(['execute_tool', 'invoke_agent', 'create_agent', 'invoke_workflow']);
const TRACELOOP_NON_MODEL_KINDS = new Set(['workflow', 'task', 'agent', 'tool']);

/** Vercel AI SDK leaf spans (one model call each) and the operation they stand for. */
const VERCEL_LEAF_OPERATIONS: Record<string, string> = {
  'ai.generateText.doGenerate': 'chat',
  'ai.streamText.doStream': 'chat',
  'ai.generateObject.doGenerate': 'chat',
  'ai.streamObject.doStream': 'chat',
  'ai.embed.doEmbed': 'embeddings',
  'ai.embedMany.doEmbed': 'embeddings',
};

const LLM_REQUEST_TYPES: Record<string, string> = {
  chat: 'chat',
  completion: 'text_completion',
  embedding: 'embeddings',
  rerank: 'rerank',
};

class Reject extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
  }
}

interface Slot {
  key: string;
  value: AttributeValue;
}

/** Counts as a convention reports them, each with the attribute it came from. */
interface Counts {
  input?: Slot;
  output?: Slot;
  cacheRead?: Slot;
  cacheWrite?: Slot;
  cacheWrite1h?: Slot;
  reasoning?: Slot;
  total?: Slot;
  /** The convention's input excludes cache reads and writes (Anthropic style). */
  inputExcludesCache: boolean;
  /** The convention's output excludes reasoning (Gemini style). */
  outputExcludesReasoning: boolean;
}

function present(v: AttributeValue | undefined): v is AttributeValue {
  return v !== undefined && v !== null;
}

// Fixed arities rather than rest parameters: these run a dozen times per span.
function slot(a: AttributeMap, k1: string, k2?: string, k3?: string): Slot | undefined {
  let value = a[k1];
  if (present(value)) return { key: k1, value };
  if (k2 === undefined) return undefined;
  value = a[k2];
  if (present(value)) return { key: k2, value };
  if (k3 === undefined) return undefined;
  value = a[k3];
  if (present(value)) return { key: k3, value };
  return undefined;
}

/** A string attribute (numbers and booleans are stringified); undefined when absent; Reject when unusable. */
function label(a: AttributeMap, what: string, k1: string, k2?: string, k3?: string, k4?: string, k5?: string): string | undefined {
  return (
    labelAt(a, what, k1) ??
    (k2 === undefined ? undefined : labelAt(a, what, k2)) ??
    (k3 === undefined ? undefined : labelAt(a, what, k3)) ??
    (k4 === undefined ? undefined : labelAt(a, what, k4)) ??
    (k5 === undefined ? undefined : labelAt(a, what, k5))
  );
}

function labelIn(a: AttributeMap, what: string, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const s = labelAt(a, what, key);
    if (s !== undefined) return s;
  }
  return undefined;
}

/** One key of `label`: undefined when absent or blank. */
function labelAt(a: AttributeMap, what: string, key: string): string | undefined {
  const v = a[key];
  if (!present(v)) return undefined;
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
  else throw new Reject('invalid_attribute', `${what} attribute "${key}" is ${Array.isArray(v) ? 'an array' : 'an object'}, expected a string`);
  if (s.length > MAX_LABEL_CHARS) {
    throw new Reject('invalid_attribute', `${what} attribute "${key}" is ${s.length} characters long (limit ${MAX_LABEL_CHARS})`);
  }
  // The ledger's own text rule: what passes here is never refused by the ledger (and never fails a batch).
  const problem = recordTextProblem(s, MAX_LABEL_CHARS);
  if (problem !== undefined) throw new Reject('invalid_attribute', `${what} attribute "${key}" ${problem}`);
  // Blank: trim() only when the first character could be white space (printable ASCII cannot).
  const c = s.charCodeAt(0);
  if (!(c > 32 && c < 127) && s.trim() === '') return undefined;
  return s;
}

/** One modality count: a non-negative integer (or integer string) no larger than MAX_PLAUSIBLE_TOKENS, else Reject. */
function modalityCount(a: AttributeMap, key: string, spanRef: string): number {
  const v = a[key];
  if (!present(v)) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]{1,16}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Reject(typeof v === 'number' ? 'implausible_usage' : 'invalid_usage', `"${key}" must be a non-negative integer token count (span ${spanRef})`);
  }
  if (n > MAX_PLAUSIBLE_TOKENS) throw new Reject('implausible_usage', `"${key}" is ${n}, above MAX_PLAUSIBLE_TOKENS (span ${spanRef})`);
  return n;
}

/** More tool calls than this in one LLM call is not a real count: the span is rejected, never priced. */
export const MAX_PLAUSIBLE_TOOL_CALLS = 100_000;

/**
 * The per-call fee counts a span carries (`tokenmeter.usage.tool_calls.<kind>`): non-negative integers (or integer
 * strings) up to MAX_PLAUSIBLE_TOOL_CALLS, else Reject. Undefined when the span reports none.
 */
function toolCalls(a: AttributeMap, spanRef: string): UsageRecord['toolCalls'] {
  let out: UsageRecord['toolCalls'];
  for (const kind of FEE_KINDS) {
    const key = ATTR_TOOL_CALLS[kind];
    const v = a[key];
    if (!present(v)) continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]{1,16}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new Reject(typeof v === 'number' ? 'implausible_usage' : 'invalid_usage', `"${key}" must be a non-negative integer count of calls (span ${spanRef})`);
    }
    if (n > MAX_PLAUSIBLE_TOOL_CALLS) throw new Reject('implausible_usage', `"${key}" is ${n}, above MAX_PLAUSIBLE_TOOL_CALLS (span ${spanRef})`);
    if (n > 0) (out ??= {})[kind] = n;
  }
  return out;
}

/** The usage with the span's modality parts, each within the bucket it is part of (never clamped: rejected). */
function withModalityParts(a: AttributeMap, usage: Usage, spanRef: string): Usage {
  const inputAudio = modalityCount(a, ATTR_INPUT_AUDIO_TOKENS, spanRef);
  const outputAudio = modalityCount(a, ATTR_OUTPUT_AUDIO_TOKENS, spanRef);
  const outputImage = modalityCount(a, ATTR_OUTPUT_IMAGE_TOKENS, spanRef);
  if (inputAudio > usage.input) {
    throw new Reject('implausible_usage', `"${ATTR_INPUT_AUDIO_TOKENS}" (${inputAudio}) exceeds the uncached input tokens (${usage.input}) (span ${spanRef})`);
  }
  if (outputAudio + outputImage > usage.output) {
    throw new Reject(
      'implausible_usage',
      `"${ATTR_OUTPUT_AUDIO_TOKENS}" + "${ATTR_OUTPUT_IMAGE_TOKENS}" (${outputAudio + outputImage}) exceed the output tokens (${usage.output}) (span ${spanRef})`,
    );
  }
  const out: Usage = { ...usage };
  if (inputAudio) out.input_audio = inputAudio;
  if (outputAudio) out.output_audio = outputAudio;
  if (outputImage) out.output_image = outputImage;
  return out;
}

function safeCount(s: Slot | undefined): number | undefined {
  const v = s?.value;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** A reported total tells which overlap rule the counts follow, whatever the convention's default. */
function applyTotalHeuristics(c: Counts): void {
  const total = safeCount(c.total);
  const input = safeCount(c.input);
  const output = safeCount(c.output);
  if (total === undefined || input === undefined || output === undefined) return;
  const cache = (safeCount(c.cacheRead) ?? 0) + (safeCount(c.cacheWrite) ?? 0);
  const reasoning = safeCount(c.reasoning) ?? 0;
  if (cache > 0 && (total === input + output + cache || total === input + output + cache + reasoning)) c.inputExcludesCache = true;
  if (reasoning > 0 && (total === input + output + reasoning || total === input + output + cache + reasoning)) {
    c.outputExcludesReasoning = true;
  }
}

interface Normalized {
  result: NormalizedUsage;
}

/** The normaliser fields each convention's counts go to, for mapping a normaliser error back to its attribute. */
function fieldSlots(c: Counts): [string, Slot | undefined][] {
  if (c.inputExcludesCache) {
    return [
      ['input_tokens', c.input],
      ['output_tokens', c.output],
      ['cache_read_input_tokens', c.cacheRead],
      ['cache_creation_input_tokens', c.cacheWrite],
    ];
  }
  if (c.outputExcludesReasoning) {
    return [
      ['promptTokenCount', c.input],
      ['candidatesTokenCount', c.output],
      ['thoughtsTokenCount', c.reasoning],
      ['cachedContentTokenCount', c.cacheRead],
    ];
  }
  return [
    [GENAI.inputTokens, c.input],
    [GENAI.outputTokens, c.output],
    [GENAI.cacheReadInputTokens, c.cacheRead],
    [GENAI.cacheCreationInputTokens, c.cacheWrite],
    [GENAI.reasoningOutputTokens, c.reasoning],
    [ATTR_CACHE_CREATION_1H, c.cacheWrite1h],
  ];
}

/** Hands the counts to the normaliser whose overlap rules they follow; maps its field names back to attributes. */
function normalize(c: Counts, spanRef: string): Normalized {
  let fn: (raw: Record<string, unknown>) => NormalizedUsage;
  let raw: Record<string, unknown>;
  if (c.inputExcludesCache) {
    // Anthropic's rule. Reasoning is not a separate Anthropic count: excluded-from-output reasoning is added
    // to output (both verified plain integers), included reasoning is already in it.
    let out: unknown = c.output?.value;
    const o = safeCount(c.output);
    const r = safeCount(c.reasoning);
    if (c.outputExcludesReasoning && o !== undefined && r !== undefined) out = o + r;
    raw = {};
    if (c.input) raw.input_tokens = c.input.value;
    if (c.output) raw.output_tokens = out;
    if (c.cacheRead) raw.cache_read_input_tokens = c.cacheRead.value;
    if (c.cacheWrite) raw.cache_creation_input_tokens = c.cacheWrite.value;
    fn = normalizeAnthropicUsage;
  } else if (c.outputExcludesReasoning) {
    // Gemini's rule (prompt includes cached content, candidates exclude thoughts); no cache writes.
    raw = {};
    for (const [field, s] of fieldSlots(c)) if (s !== undefined) raw[field] = s.value;
    fn = normalizeGeminiUsage;
  } else {
    // The GenAI conventions' (the usual case: written out, no field list per span).
    raw = {};
    if (c.input) raw[GENAI.inputTokens] = c.input.value;
    if (c.output) raw[GENAI.outputTokens] = c.output.value;
    if (c.cacheRead) raw[GENAI.cacheReadInputTokens] = c.cacheRead.value;
    if (c.cacheWrite) raw[GENAI.cacheCreationInputTokens] = c.cacheWrite.value;
    if (c.reasoning) raw[GENAI.reasoningOutputTokens] = c.reasoning.value;
    if (c.cacheWrite1h) raw[ATTR_CACHE_CREATION_1H] = c.cacheWrite1h.value;
    fn = normalizeGenAiAttributes;
  }
  try {
    return { result: fn(raw) };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const s = fieldSlots(c).find(([field]) => field === err.field)?.[1];
    if (s === undefined) throw new Reject('implausible_usage', `${err.message} (span ${spanRef})`);
    const numeric = typeof s.value === 'number' || (typeof s.value === 'string' && /^-?[0-9]+(\.[0-9]*)?$/.test(s.value));
    throw new Reject(
      numeric ? 'implausible_usage' : 'invalid_usage',
      `attribute "${s.key}": ${err.message.replace(`"${err.field}"`, `"${s.key}"`)} (span ${spanRef})`,
    );
  }
}

function hasAnyCount(c: Counts): boolean {
  return (
    c.input !== undefined || c.output !== undefined || c.cacheRead !== undefined || c.cacheWrite !== undefined || c.reasoning !== undefined
  );
}

/** Parses `ai.response.providerMetadata` (a JSON string) for one provider's object; undefined when unusable. */
function providerMetadata(a: AttributeMap, provider: string): Record<string, unknown> | undefined {
  const raw = a['ai.response.providerMetadata'];
  if (typeof raw !== 'string' || raw.length > MAX_PROVIDER_METADATA_CHARS) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const sub = (parsed as Record<string, unknown>)[provider];
    return typeof sub === 'object' && sub !== null && !Array.isArray(sub) ? (sub as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function metadataSlot(meta: Record<string, unknown> | undefined, key: string, path: string): Slot | undefined {
  if (meta === undefined || !Object.hasOwn(meta, key)) return undefined;
  const v = meta[key];
  if (v === null || v === undefined) return undefined;
  // JSON values here are numbers (or hostile types, which the normaliser rejects); nested objects are not counts.
  return { key: `ai.response.providerMetadata.${path}`, value: typeof v === 'object' ? '[object]' : (v as AttributeValue) };
}

/** Where a convention carries user, plan and feature: the standard attributes first, then its own. */
interface AttributionKeys {
  user: readonly string[];
  plan: readonly string[];
  feature: readonly string[];
}

// Built once: extraction runs per span.
const STANDARD_ATTRIBUTION: AttributionKeys = { user: [ATTR_USER_ID, 'enduser.id'], plan: [ATTR_PLAN], feature: [ATTR_FEATURE] };
const VERCEL_ATTRIBUTION: AttributionKeys = {
  user: [...STANDARD_ATTRIBUTION.user, 'ai.telemetry.metadata.userId', 'ai.telemetry.metadata.user.id', 'ai.telemetry.metadata.user_id'],
  plan: [...STANDARD_ATTRIBUTION.plan, `ai.telemetry.metadata.${ATTR_PLAN}`, 'ai.telemetry.metadata.plan'],
  feature: [...STANDARD_ATTRIBUTION.feature, `ai.telemetry.metadata.${ATTR_FEATURE}`, 'ai.telemetry.metadata.feature', 'ai.telemetry.functionId'],
};
const OPENLLMETRY_ATTRIBUTION: AttributionKeys = {
  user: [
    ...STANDARD_ATTRIBUTION.user,
    'traceloop.association.properties.user_id',
    'traceloop.association.properties.userId',
    'traceloop.association.properties.user.id',
  ],
  plan: [...STANDARD_ATTRIBUTION.plan, `traceloop.association.properties.${ATTR_PLAN}`, 'traceloop.association.properties.plan'],
  feature: [...STANDARD_ATTRIBUTION.feature, `traceloop.association.properties.${ATTR_FEATURE}`, 'traceloop.association.properties.feature'],
};

interface Convention {
  source: UsageSource;
  counts: Counts;
  provider: string | undefined;
  model: string | undefined;
  operation: string;
  attribution: AttributionKeys;
}

function vercel(a: AttributeMap, operation: string): Convention {
  const providerRaw = label(a, 'provider', 'ai.model.provider', GENAI.providerName, GENAI.deprecatedSystem);
  const provider = providerRaw === undefined ? undefined : normalizeProvider(providerRaw);
  const counts: Counts = { inputExcludesCache: false, outputExcludesReasoning: false };
  if (operation === 'embeddings') {
    counts.input = slot(a, 'ai.usage.tokens');
  } else if (present(a['ai.usage.inputTokenDetails.noCacheTokens']) || present(a['ai.usage.inputTokenDetails.cacheReadTokens'])) {
    // AI SDK 6: normalised across providers, totals include the details.
    counts.input = slot(a, 'ai.usage.inputTokens');
    counts.output = slot(a, 'ai.usage.outputTokens');
    counts.cacheRead = slot(a, 'ai.usage.inputTokenDetails.cacheReadTokens');
    counts.cacheWrite = slot(a, 'ai.usage.inputTokenDetails.cacheWriteTokens');
    counts.reasoning = slot(a, 'ai.usage.outputTokenDetails.reasoningTokens', 'ai.usage.reasoningTokens');
    counts.total = slot(a, 'ai.usage.totalTokens');
  } else if (present(a['ai.usage.inputTokens']) || present(a['ai.usage.outputTokens'])) {
    // AI SDK 5: as each provider package reported them.
    counts.input = slot(a, 'ai.usage.inputTokens');
    counts.output = slot(a, 'ai.usage.outputTokens');
    counts.cacheRead = slot(a, 'ai.usage.cachedInputTokens');
    counts.reasoning = slot(a, 'ai.usage.reasoningTokens');
    counts.total = slot(a, 'ai.usage.totalTokens');
    if (provider === 'anthropic' || (providerRaw ?? '').toLowerCase().includes('anthropic')) {
      counts.inputExcludesCache = true;
      counts.cacheWrite = metadataSlot(providerMetadata(a, 'anthropic'), 'cacheCreationInputTokens', 'anthropic.cacheCreationInputTokens');
    }
  } else {
    // AI SDK 4: promptTokens / completionTokens; cache and reasoning details only in providerMetadata.
    counts.input = slot(a, 'ai.usage.promptTokens');
    counts.output = slot(a, 'ai.usage.completionTokens');
    if (provider === 'anthropic' || (providerRaw ?? '').toLowerCase().includes('anthropic')) {
      const meta = providerMetadata(a, 'anthropic');
      counts.inputExcludesCache = true;
      counts.cacheRead = metadataSlot(meta, 'cacheReadInputTokens', 'anthropic.cacheReadInputTokens');
      counts.cacheWrite = metadataSlot(meta, 'cacheCreationInputTokens', 'anthropic.cacheCreationInputTokens');
    } else if (provider === 'openai' || provider === 'azure.ai.openai') {
      const meta = providerMetadata(a, provider === 'openai' ? 'openai' : 'azure');
      counts.cacheRead = metadataSlot(meta, 'cachedPromptTokens', 'openai.cachedPromptTokens');
      counts.reasoning = metadataSlot(meta, 'reasoningTokens', 'openai.reasoningTokens');
    }
  }
  if (counts.input === undefined && counts.output === undefined) {
    // Some versions set only the GenAI names on the leaf span.
    counts.input = slot(a, GENAI.inputTokens);
    counts.output = slot(a, GENAI.outputTokens);
  }
  applyTotalHeuristics(counts);
  return {
    source: 'vercel-ai',
    counts,
    provider,
    model: label(a, 'model', 'ai.response.model', GENAI.responseModel, 'ai.model.id', GENAI.requestModel),
    operation,
    attribution: VERCEL_ATTRIBUTION,
  };
}

function openInference(a: AttributeMap, kind: string): Convention {
  const counts: Counts = {
    input: slot(a, 'llm.token_count.prompt'),
    output: slot(a, 'llm.token_count.completion'),
    cacheRead: slot(a, 'llm.token_count.prompt_details.cache_read'),
    cacheWrite: slot(a, 'llm.token_count.prompt_details.cache_write'),
    reasoning: slot(a, 'llm.token_count.completion_details.reasoning'),
    total: slot(a, 'llm.token_count.total'),
    inputExcludesCache: false,
    outputExcludesReasoning: false,
  };
  applyTotalHeuristics(counts);
  const providerRaw = label(a, 'provider', 'llm.provider', 'llm.system', GENAI.providerName, GENAI.deprecatedSystem);
  return {
    source: 'openinference',
    counts,
    provider: providerRaw === undefined ? undefined : normalizeProvider(providerRaw),
    model: label(a, 'model', 'llm.model_name', 'embedding.model_name', GENAI.responseModel, GENAI.requestModel),
    operation: kind === 'EMBEDDING' ? 'embeddings' : 'chat',
    attribution: STANDARD_ATTRIBUTION,
  };
}

/** tokenmeter, OTel GenAI (current and deprecated names) and OpenLLMetry, which extends the GenAI names. */
function genAi(a: AttributeMap, span: DecodedSpan, openllmetry: boolean): Convention {
  const providerRaw = label(a, 'provider', GENAI.providerName, GENAI.deprecatedSystem);
  const provider = providerRaw === undefined ? undefined : normalizeProvider(providerRaw);
  const counts: Counts = {
    input: slot(a, GENAI.inputTokens, GENAI.deprecatedPromptTokens),
    output: slot(a, GENAI.outputTokens, GENAI.deprecatedCompletionTokens),
    cacheRead: slot(a, GENAI.cacheReadInputTokens, 'gen_ai.usage.cache_read_input_tokens'),
    cacheWrite: slot(a, GENAI.cacheCreationInputTokens, 'gen_ai.usage.cache_creation_input_tokens', 'gen_ai.usage.cache_write_input_tokens'),
    cacheWrite1h: slot(a, ATTR_CACHE_CREATION_1H),
    reasoning: slot(a, GENAI.reasoningOutputTokens, 'gen_ai.usage.reasoning_tokens'),
    total: slot(a, 'gen_ai.usage.total_tokens', 'llm.usage.total_tokens'),
    // OpenLLMetry JS copies Anthropic's exclusive input_tokens as is (see the header comment).
    inputExcludesCache: openllmetry && provider === 'anthropic' && span.scope.name.startsWith('@traceloop/'),
    outputExcludesReasoning: false,
  };
  applyTotalHeuristics(counts);
  const requestType = label(a, 'operation', 'llm.request.type');
  const operation =
    label(a, 'operation', GENAI.operationName) ??
    (requestType !== undefined && Object.hasOwn(LLM_REQUEST_TYPES, requestType) ? LLM_REQUEST_TYPES[requestType] : requestType) ??
    'chat';
  const tokenmeter =
    span.scope.name.startsWith('tokenmeter') || present(a[ATTR_USAGE_ESTIMATED]) || present(a[ATTR_CACHE_CREATION_1H]);
  return {
    source: tokenmeter ? 'tokenmeter' : openllmetry ? 'openllmetry' : 'otel-genai',
    counts,
    provider,
    model: label(a, 'model', GENAI.responseModel, GENAI.requestModel),
    operation,
    attribution: openllmetry ? OPENLLMETRY_ATTRIBUTION : STANDARD_ATTRIBUTION,
  };
}

/** Which convention a span follows, or undefined when it is not a priced GenAI model call. */
function classify(span: DecodedSpan): Convention | undefined {
  const a = span.attributes;
  const vercelOp = a['ai.operationId'];
  if (typeof vercelOp === 'string') {
    if (!Object.hasOwn(VERCEL_LEAF_OPERATIONS, vercelOp)) return undefined; // parents (ai.generateText) sum their steps
    return vercel(a, VERCEL_LEAF_OPERATIONS[vercelOp]);
  }
  const oiKind = a['openinference.span.kind'];
  if (typeof oiKind === 'string') {
    const kind = oiKind.toUpperCase();
    return kind === 'LLM' || kind === 'EMBEDDING' ? openInference(a, kind) : undefined;
  }
  const tlKind = a['traceloop.span.kind'];
  if (typeof tlKind === 'string' && TRACELOOP_NON_MODEL_KINDS.has(tlKind)) return undefined;
  const op = a[GENAI.operationName];
  if (typeof op === 'string' && NON_MODEL_OPERATIONS.has(op)) return undefined;
  const openllmetry =
    span.scope.name.startsWith('@traceloop/') ||
    present(a['llm.request.type']) ||
    present(a['llm.usage.total_tokens']) ||
    present(a['gen_ai.usage.cache_read_input_tokens']) ||
    present(a['gen_ai.usage.cache_creation_input_tokens']);
  const genAiLike =
    openllmetry ||
    present(op) ||
    present(a[GENAI.providerName]) ||
    present(a[GENAI.deprecatedSystem]) ||
    present(a[GENAI.inputTokens]) ||
    present(a[GENAI.outputTokens]) ||
    present(a[GENAI.deprecatedPromptTokens]) ||
    present(a[GENAI.deprecatedCompletionTokens]);
  return genAiLike ? genAi(a, span, openllmetry) : undefined;
}

function isTrue(v: AttributeValue | undefined): boolean {
  return v === true || v === 'true';
}

function extract(span: DecodedSpan): ExtractResult {
  const conv = classify(span);
  if (conv === undefined) return IGNORED;
  const spanRef = span.spanId === '' ? span.name.slice(0, 64) : span.spanId;
  if (span.invalidId !== undefined) {
    return { kind: 'rejected', reason: 'invalid_id', message: `${span.invalidId} (span "${span.name.slice(0, 64)}")` };
  }
  const a = span.attributes;
  if (conv.model === undefined) {
    return { kind: 'rejected', reason: 'missing_model', message: `GenAI span ${spanRef} has no response or request model` };
  }
  const outcome: UsageRecord['outcome'] = span.statusCode === 2 || present(a[ATTR_ERROR_TYPE]) ? 'error' : 'success';

  let usage = zeroUsage();
  let warnings: string[] = [];
  if (hasAnyCount(conv.counts)) {
    const n = normalize(conv.counts, spanRef);
    usage = n.result.usage;
    warnings = n.result.warnings;
  } else if (outcome === 'success') {
    return { kind: 'rejected', reason: 'missing_usage', message: `GenAI span ${spanRef} (${conv.source}) reports no token counts` };
  }

  if (a[ATTR_INPUT_AUDIO_TOKENS] !== undefined || a[ATTR_OUTPUT_AUDIO_TOKENS] !== undefined || a[ATTR_OUTPUT_IMAGE_TOKENS] !== undefined) {
    usage = withModalityParts(a, usage, spanRef);
  }

  const endNanos = span.endTimeUnixNano !== 0n ? span.endTimeUnixNano : span.startTimeUnixNano;
  if (endNanos === 0n) return { kind: 'rejected', reason: 'invalid_attribute', message: `span ${spanRef} has no end or start time` };

  const clientUser = labelIn(a, 'user', conv.attribution.user);
  if (clientUser !== undefined) {
    // One rule for user ids, here and on /api/v1/usage/{user}; the ids the exporter writes itself are reserved.
    const problem = userIdProblem(clientUser);
    if (problem !== undefined) return { kind: 'rejected', reason: 'invalid_attribute', message: `user id ${JSON.stringify(clientUser.slice(0, 64))} ${problem} (span ${spanRef})` };
    if (RESERVED_USER_IDS.has(clientUser)) {
      return { kind: 'rejected', reason: 'reserved_user_id', message: `user id "${clientUser}" is reserved for tokenmeter's own series (span ${spanRef})` };
    }
  }
  const userId = clientUser ?? ANONYMOUS_USER;
  const plan = labelIn(a, 'plan', conv.attribution.plan);
  const feature = labelIn(a, 'feature', conv.attribution.feature);
  const tier = label(a, 'service tier', ATTR_SERVICE_TIER, GENAI.responseServiceTier, GENAI.requestServiceTier);
  // Pricing facts (fast mode, regional / data-residency premiums): kept raw, interpreted by the pricing stage.
  const speed = label(a, 'speed', ATTR_SPEED);
  const serverAddress = label(a, 'server address', ATTR_SERVER_ADDRESS);
  const inferenceGeo = label(a, 'inference geo', ATTR_INFERENCE_GEO);
  const calls = toolCalls(a, spanRef);

  const record: UsageRecord = {
    traceId: span.traceId,
    spanId: span.spanId,
    endTimeMillis: Number(endNanos / 1_000_000n),
    provider: conv.provider ?? 'unknown',
    rawModel: conv.model,
    operation: conv.operation,
    usage,
    estimated: isTrue(a[ATTR_USAGE_ESTIMATED]),
    userId,
    outcome,
    source: conv.source,
  };
  if (plan !== undefined) record.planFromSpan = plan;
  if (feature !== undefined) record.feature = feature;
  if (tier !== undefined) record.serviceTier = tier.toLowerCase();
  if (speed !== undefined) record.speed = speed.toLowerCase();
  if (serverAddress !== undefined) record.serverAddress = serverAddress.toLowerCase();
  if (inferenceGeo !== undefined) record.inferenceGeo = inferenceGeo.toLowerCase();
  if (calls !== undefined) record.toolCalls = calls;
  return { kind: 'usage', record, warnings };
}

/**
 * Extracts the usage record of one LLM call from a decoded span: `usage` for a priced GenAI model call,
 * `ignored` for any other span (HTTP, DB, agent/workflow/parent spans), `rejected` with a reason (a metric
 * label) and a message naming the field and span for a GenAI span that cannot be priced. Never throws.
 */
export function extractUsage(span: DecodedSpan): ExtractResult {
  try {
    return extract(span);
  } catch (err) {
    if (err instanceof Reject) return { kind: 'rejected', reason: err.reason, message: err.message };
    // Not expected; a hostile span must still not crash the exporter.
    const message = err instanceof Error ? err.message : String(err);
    return { kind: 'rejected', reason: 'invalid_usage', message: `could not extract usage from span ${span.spanId}: ${message}` };
  }
}
