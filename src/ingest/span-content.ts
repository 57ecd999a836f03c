import { GENAI } from '../contract/names.js';
import { estimateChatTokens, estimateTokens, EstimateUnavailableError, type EstimateChatMessage } from '../usage/index.js';
import type { AttributeMap } from './types.js';

/**
 * The prompt and completion text a GenAI span carries, for estimating the tokens of a call whose instrumentation
 * reported none (an OpenInference streamed call, an OpenAI-compatible server that sends no usage). Read from, in
 * order: the GenAI conventions' `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions`
 * (JSON, `[{role, parts: [{type: "text", content}]}]`), the older indexed `gen_ai.prompt.N.*` /
 * `gen_ai.completion.N.*` (OpenLLMetry), OpenInference's `llm.input_messages.N.message.*` /
 * `llm.output_messages.N.message.*`, and the Vercel AI SDK's `ai.prompt.messages` / `ai.response.text`.
 * Hostile input: every string is bounded (MAX_CONTENT_CHARS in all), JSON is parsed only below that size, indexed
 * keys are read up to MAX_INDEXED_MESSAGES, and anything of an unexpected shape is skipped, never thrown.
 */

/** Content above this many characters (prompt + completion) is not estimated: the span counts with zero tokens. */
export const MAX_CONTENT_CHARS = 1_000_000;
/** Indexed messages read per side (gen_ai.prompt.N, llm.input_messages.N). */
const MAX_INDEXED_MESSAGES = 1_000;

export interface SpanContent {
  input: EstimateChatMessage[];
  output: string;
  /** Characters read, to refuse oversized content before tokenizing it. */
  chars: number;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Text of one GenAI-convention message's parts (text parts only; tool calls and results as JSON). */
function partsText(parts: unknown): string {
  if (!Array.isArray(parts)) return typeof parts === 'string' ? parts : '';
  let text = '';
  for (const p of parts) {
    if (typeof p === 'string') text += p;
    else if (typeof p === 'object' && p !== null) {
      const part = p as Record<string, unknown>;
      if (typeof part.content === 'string') text += part.content;
      else if (typeof part.text === 'string') text += part.text;
      else if (part.type === 'tool_call' || part.type === 'tool_call_response' || part.type === 'tool-call' || part.type === 'tool-result') {
        text += JSON.stringify(part.arguments ?? part.response ?? part.input ?? part.output ?? '') ?? '';
      }
    }
  }
  return text;
}

function parseJsonArray(raw: unknown, budget: number): unknown[] | undefined {
  if (typeof raw !== 'string' || raw.length > budget) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `[{role, parts}]` (GenAI) or `[{role, content}]` (AI SDK prompt messages, content a string or parts). */
function jsonMessages(raw: unknown, budget: number): EstimateChatMessage[] | undefined {
  const list = parseJsonArray(raw, budget);
  if (list === undefined) return undefined;
  const out: EstimateChatMessage[] = [];
  for (const m of list) {
    if (typeof m !== 'object' || m === null) continue;
    const msg = m as Record<string, unknown>;
    out.push({ role: str(msg.role) ?? 'user', content: partsText(msg.parts ?? msg.content) });
  }
  return out;
}

function indexed(a: AttributeMap, prefix: string, roleKey: string, contentKey: string): EstimateChatMessage[] {
  const out: EstimateChatMessage[] = [];
  for (let i = 0; i < MAX_INDEXED_MESSAGES; i++) {
    const content = a[`${prefix}.${i}.${contentKey}`];
    const role = a[`${prefix}.${i}.${roleKey}`];
    if (content === undefined && role === undefined) break;
    out.push({ role: str(role) ?? 'user', content: str(content) ?? '' });
  }
  return out;
}

/** The span's prompt and completion, or undefined when it carries neither. */
export function spanContent(a: AttributeMap): SpanContent | undefined {
  // Oversized content is content all the same: reported as such (not estimated), not as a span without content.
  for (const key of [GENAI.inputMessages, GENAI.outputMessages, 'gen_ai.system_instructions', 'ai.prompt.messages']) {
    const raw = a[key];
    if (typeof raw === 'string' && raw.length > MAX_CONTENT_CHARS) return { input: [], output: '', chars: raw.length };
  }
  let input: EstimateChatMessage[] | undefined;
  let output: string | undefined;
  const system = jsonMessages(a['gen_ai.system_instructions'], MAX_CONTENT_CHARS);
  const genAiIn = jsonMessages(a[GENAI.inputMessages], MAX_CONTENT_CHARS);
  if (genAiIn !== undefined) {
    input = system !== undefined && system.length > 0 ? [{ role: 'system', content: system.map((m) => m.content).join('') }, ...genAiIn] : genAiIn;
  }
  const genAiOut = jsonMessages(a[GENAI.outputMessages], MAX_CONTENT_CHARS);
  if (genAiOut !== undefined) output = genAiOut.map((m) => m.content).join('');

  if (input === undefined) {
    const tl = indexed(a, 'gen_ai.prompt', 'role', 'content');
    if (tl.length > 0) input = tl;
  }
  if (output === undefined) {
    const tl = indexed(a, 'gen_ai.completion', 'role', 'content');
    if (tl.length > 0) output = tl.map((m) => m.content as string).join('');
  }
  if (input === undefined) {
    const oi = indexed(a, 'llm.input_messages', 'message.role', 'message.content');
    if (oi.length > 0) input = oi;
  }
  if (output === undefined) {
    const oi = indexed(a, 'llm.output_messages', 'message.role', 'message.content');
    if (oi.length > 0) output = oi.map((m) => m.content as string).join('');
  }
  if (input === undefined) input = jsonMessages(a['ai.prompt.messages'], MAX_CONTENT_CHARS);
  if (output === undefined) output = str(a['ai.response.text']);

  if (input === undefined && output === undefined) return undefined;
  let chars = (output ?? '').length;
  for (const m of input ?? []) chars += m.role.length + (typeof m.content === 'string' ? m.content.length : 0);
  return { input: input ?? [], output: output ?? '', chars };
}

export type ContentEstimate = { input: number; output: number } | { unavailable: string };

/**
 * Estimated input and output tokens of the content (OpenAI's chat framing on the prompt, none on the completion).
 * `unavailable` with the reason when the content is too large or the tokenizer is not installed.
 */
export function estimateContent(content: SpanContent, model: string): ContentEstimate {
  if (content.chars > MAX_CONTENT_CHARS) return { unavailable: `its content (${content.chars} characters) is above the ${MAX_CONTENT_CHARS} characters estimated from` };
  try {
    return {
      input: content.input.length > 0 ? estimateChatTokens(content.input, model) : 0,
      output: estimateTokens(content.output, model),
    };
  } catch (err) {
    if (err instanceof EstimateUnavailableError) return { unavailable: err.message };
    throw err;
  }
}
