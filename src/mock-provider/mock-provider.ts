import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  addUsage,
  estimateTokens,
  normalizeAnthropicUsage,
  normalizeOpenAIChatUsage,
  normalizeOpenAIResponsesUsage,
  zeroUsage,
  type EstimateChatMessage,
  type Usage,
} from '../usage/index.js';
import { AnthropicPromptCache, OpenAIPrefixCache } from './prompt-cache.js';
import { generateReasoning, generateWords, streamPieces } from './text.js';

/*
 * A TEST AND DEMO server that speaks the OpenAI (chat completions, responses, embeddings) and Anthropic
 * (messages) wire formats, JSON and SSE, on a loopback port. It plays the provider: by default its token counts
 * come from the actual prompt and response text through tokenmeter's tokenizer estimate, and it records the
 * usage it sent so that tests and the demo can compare totals exactly. It is never on a metering path.
 * Like the providers it caches prompts (Anthropic `cache_control` breakpoints, OpenAI's automatic prefix caching;
 * see prompt-cache.ts) and reasoning models "think" a hidden, deterministic text whose tokens are reported as
 * reasoning tokens.
 */

export interface MockProviderOptions {
  /** Seed of the deterministic response text. Default 1. */
  seed?: number;
  /** Words per text response. Default 12. */
  responseWords?: number;
  /** Pause between stream chunks. Default 0. */
  chunkDelayMillis?: number;
  /** Behave like an OpenAI-compatible server that ignores `stream_options.include_usage`. Default false. */
  ignoreIncludeUsage?: boolean;
  /** Fixed `created` timestamp (seconds) instead of the clock, for byte-identical responses. */
  createdSeconds?: number;
  /** Bind address. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port. Default 0 (any free port). */
  port?: number;
  /** The mock's clock in milliseconds, for prompt-cache TTLs. Default `Date.now`. */
  nowMillis?: () => number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** One response's usage as the mock sent it: the raw wire object and its five buckets. */
export interface SentUsage {
  requestNumber: number;
  api: 'openai.chat' | 'openai.responses' | 'openai.embeddings' | 'anthropic.messages';
  model: string;
  stream: boolean;
  /** The end user named in the request (`user`, `safety_identifier` or Anthropic `metadata.user_id`). */
  user?: string;
  /** The hidden reasoning text whose tokens were reported as reasoning tokens (reasoning models only). */
  reasoningText?: string;
  raw: Record<string, unknown>;
  usage: Usage;
}

/** What one streamed response really put on the wire, up to the moment the client went away (or the end). */
export interface SentStream {
  requestNumber: number;
  api: SentUsage['api'];
  model: string;
  /** Events written (excluding `[DONE]`). */
  eventsSent: number;
  eventsTotal: number;
  /** The answer text carried by the events written. */
  textSent: string;
  /** Tokens of `textSent`, counted as the answer's output tokens are (the generated text the client was sent). */
  outputTokensSent: number;
  /** The most tokens one written event's text had (what "within one chunk" means for this stream). */
  maxEventTokens: number;
  /** Every event was written and the response ended. */
  completed: boolean;
  /** The client closed the connection before the response ended. */
  clientClosed: boolean;
}

export interface MockProvider {
  /** `http://127.0.0.1:<port>` — the Anthropic SDK's baseURL. */
  url: string;
  /** `${url}/v1` — the OpenAI SDK's baseURL. */
  openaiBaseURL: string;
  requests: RecordedRequest[];
  /** Usage the mock put on the wire (responses that were cut off before their usage are absent). */
  usageSent: SentUsage[];
  /** Every streamed response, as far as it was written (recorded when the response ends or the client leaves). */
  streamsSent: SentStream[];
  /** Answers the next `count` requests with `status` (429, 500, ...) and a provider-style error body. */
  failNext(count: number, status: number): void;
  /** Cuts the connection of the next streamed response after `chunks` events. */
  breakNextStream(chunks: number): void;
  /** Returns exactly this usage (in tokenmeter's buckets, mapped onto each wire format) until cleared. */
  setFixedUsage(usage: Usage | undefined): void;
  /** Sends no usage at all in any format (an OpenAI-compatible server without usage reporting). */
  setOmitUsage(omit: boolean): void;
  setIgnoreIncludeUsage(ignore: boolean): void;
  setChunkDelay(millis: number): void;
  /** Back to the options it started with: no failures, breaks, fixed usage or delay; records and prompt caches emptied. */
  reset(): void;
  /** Sum of `usageSent`. */
  totalUsageSent(): Usage;
  close(): Promise<void>;
}

interface Scenario {
  failures: { count: number; status: number };
  breakAfter: number | undefined;
  fixedUsage: Usage | undefined;
  omitUsage: boolean;
  ignoreIncludeUsage: boolean;
  chunkDelayMillis: number;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The five buckets of what was put on the wire, read back with tokenmeter's normaliser for that format (so a
 * bucket the format cannot carry is not claimed). Deliberately implausible fixed usage, which the normaliser
 * refuses, is recorded as configured.
 */
function bucketsOf(normalize: () => Usage, configured: Usage): Usage {
  try {
    return normalize();
  } catch {
    return { ...configured };
  }
}

/** The answer text one stream event carries (chat deltas, Responses text deltas, Anthropic text deltas). */
function eventText(data: any): string {
  if (Array.isArray(data?.choices)) {
    let text = '';
    for (const c of data.choices) if (typeof c?.delta?.content === 'string') text += c.delta.content;
    return text;
  }
  if (data?.type === 'response.output_text.delta' && typeof data.delta === 'string') return data.delta;
  if (data?.type === 'content_block_delta' && data.delta?.type === 'text_delta' && typeof data.delta.text === 'string') return data.delta.text;
  return '';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The end user a request names (OpenAI `user` / `safety_identifier`, Anthropic `metadata.user_id`). */
export function userOf(body: any): string | undefined {
  const u = body?.user ?? body?.safety_identifier ?? body?.metadata?.user_id;
  return typeof u === 'string' ? u : undefined;
}

/**
 * The reasoning effort a request runs with: the requested one (`reasoning_effort`, Responses `reasoning.effort`),
 * else `medium` (the providers' default) for reasoning models (o-series, gpt-5 except its chat variants);
 * undefined for a model that does not reason.
 */
function reasoningEffortOf(model: string, body: any): string | undefined {
  const requested = body?.reasoning_effort ?? body?.reasoning?.effort;
  if (typeof requested === 'string') return requested;
  const m = model.toLowerCase().replace(/^.*\//, '');
  return /^(o\d|gpt-5)/.test(m) && !/-chat/.test(m) ? 'medium' : undefined;
}

/** The prompt side of an answer, as the provider counted it. */
interface PromptCount {
  input: number;
  cache_read: number;
  cache_write: number;
  cache_write_1h?: number;
}

/** The parts of one answer, before it is put into a wire format. */
interface Answer {
  n: number;
  model: string;
  user: string | undefined;
  reasoningText: string | undefined;
  text: string;
  pieces: string[];
  tool: { id: string; name: string; args: string; argPieces: string[] } | undefined;
  /** What the provider "counted". */
  usage: Usage;
}

export async function startMockProvider(options: MockProviderOptions = {}): Promise<MockProvider> {
  const seed = options.seed ?? 1;
  const words = options.responseWords ?? 12;
  const initialScenario = (): Scenario => ({
    failures: { count: 0, status: 500 },
    breakAfter: undefined,
    fixedUsage: undefined,
    omitUsage: false,
    ignoreIncludeUsage: options.ignoreIncludeUsage ?? false,
    chunkDelayMillis: options.chunkDelayMillis ?? 0,
  });
  const scenario: Scenario = initialScenario();
  const requests: RecordedRequest[] = [];
  const usageSent: SentUsage[] = [];
  const streamsSent: SentStream[] = [];
  let counter = 0;
  const created = () => options.createdSeconds ?? Math.floor(Date.now() / 1000);
  const openaiCache = new OpenAIPrefixCache();
  const anthropicCache = new AnthropicPromptCache(options.nowMillis ?? Date.now);

  function answer(body: any, prompt: PromptCount, lastIsToolResult: boolean): Answer {
    const n = ++counter;
    const model = String(body.model);
    const tools: unknown[] | undefined = Array.isArray(body.tools) ? body.tools : undefined;
    const ws = generateWords(seed, n, words);
    let tool: Answer['tool'];
    let text = ws.join(' ');
    let pieces = streamPieces(ws);
    const first = tools?.[0] as any;
    const toolName = first?.function?.name ?? first?.name;
    if (typeof toolName === 'string' && !lastIsToolResult) {
      const args = JSON.stringify({ query: ws.slice(0, 3).join(' ').replace(/\.$/, '') });
      const argPieces = [args.slice(0, 10), args.slice(10)].filter((p) => p.length > 0);
      tool = { id: `call_mock_${n}`, name: toolName, args, argPieces };
      text = '';
      pieces = [];
    }
    const outputTokens = tool ? estimateTokens(tool.name + tool.args, model) : estimateTokens(text, model);
    const effort = reasoningEffortOf(model, body);
    const reasoningText = effort === undefined ? undefined : generateReasoning(seed, n, words, effort);
    const reasoning = reasoningText === undefined ? 0 : estimateTokens(reasoningText, model);
    const usage: Usage = scenario.fixedUsage ? { ...scenario.fixedUsage } : { ...zeroUsage(), ...prompt, output: outputTokens, reasoning };
    return { n, model, user: userOf(body), reasoningText, text, pieces, tool, usage };
  }

  function sentUsage(a: Answer, api: SentUsage['api'], stream: boolean, raw: Record<string, unknown>, usage: () => Usage): SentUsage {
    const s: SentUsage = { requestNumber: a.n, api, model: a.model, stream, raw, usage: bucketsOf(usage, a.usage) };
    if (a.user !== undefined) s.user = a.user;
    if (a.reasoningText !== undefined && !scenario.fixedUsage) s.reasoningText = a.reasoningText;
    return s;
  }

  /** OpenAI prompt tokens with the automatically cached part (chat and responses alike). */
  function openAIPrompt(model: string, messages: EstimateChatMessage[]): PromptCount {
    const { promptTokens, cachedTokens } = openaiCache.count(model, messages);
    return { input: promptTokens - cachedTokens, cache_read: cachedTokens, cache_write: 0 };
  }

  function record(a: Answer, api: SentUsage['api'], stream: boolean, raw: Record<string, unknown>, usage: () => Usage): void {
    usageSent.push(sentUsage(a, api, stream, raw, usage));
  }

  async function writeEvents(res: ServerResponse, events: Array<[string | undefined, unknown]>, done: boolean, a: Answer, api: SentUsage['api']): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': `req_mock_${counter}` });
    const breakAfter = scenario.breakAfter;
    scenario.breakAfter = undefined;
    let sent = 0;
    let textSent = '';
    let maxEventTokens = 0;
    let clientClosed = false;
    // A client that goes away (break, abort) closes the socket: stop generating, as a provider does.
    res.on('close', () => {
      if (!res.writableFinished) clientClosed = true;
    });
    const recordStream = (completed: boolean): void => {
      streamsSent.push({
        requestNumber: a.n,
        api,
        model: a.model,
        eventsSent: sent,
        eventsTotal: events.length,
        textSent,
        outputTokensSent: estimateTokens(textSent, api === 'anthropic.messages' ? undefined : a.model),
        maxEventTokens,
        completed,
        clientClosed,
      });
    };
    for (const [event, data] of events) {
      if (breakAfter !== undefined && sent >= breakAfter) {
        // Everything before the cut reached the client; then the connection drops mid-body.
        res.destroy();
        recordStream(false);
        return;
      }
      if (res.destroyed || clientClosed) {
        recordStream(false);
        return;
      }
      const text = `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
      if (breakAfter !== undefined) await new Promise<void>((resolve) => res.write(text, () => resolve()));
      else res.write(text);
      sent++;
      const piece = eventText(data);
      if (piece.length > 0) {
        textSent += piece;
        maxEventTokens = Math.max(maxEventTokens, estimateTokens(piece, api === 'anthropic.messages' ? undefined : a.model));
      }
      if (scenario.chunkDelayMillis > 0) await sleep(scenario.chunkDelayMillis);
    }
    if (res.destroyed || clientClosed) {
      recordStream(false);
      return;
    }
    if (done) res.write('data: [DONE]\n\n');
    res.end();
    recordStream(true);
  }

  // --- OpenAI chat completions -------------------------------------------------------------------------------
  function chatWireUsage(u: Usage): Record<string, unknown> {
    const prompt = u.input + u.cache_read + u.cache_write;
    const completion = u.output + u.reasoning;
    return {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      prompt_tokens_details: { cached_tokens: u.cache_read, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: u.reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
  }

  async function chatCompletions(body: any, res: ServerResponse): Promise<void> {
    const model = String(body.model);
    const messages: EstimateChatMessage[] = Array.isArray(body.messages) ? body.messages : [];
    const last = messages[messages.length - 1];
    const a = answer(body, openAIPrompt(model, messages), last?.role === 'tool');
    const id = `chatcmpl-mock-${a.n}`;
    const wire = chatWireUsage(a.usage);
    const base = { id, object: 'chat.completion.chunk', created: created(), model, system_fingerprint: 'fp_mock' };
    if (body.stream !== true) {
      const message: Record<string, unknown> = { role: 'assistant', content: a.tool ? null : a.text, refusal: null, annotations: [] };
      if (a.tool) message.tool_calls = [{ id: a.tool.id, type: 'function', function: { name: a.tool.name, arguments: a.tool.args } }];
      const out: Record<string, unknown> = {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message, logprobs: null, finish_reason: a.tool ? 'tool_calls' : 'stop' }],
        service_tier: 'default',
      };
      if (!scenario.omitUsage) {
        out.usage = wire;
        record(a, 'openai.chat', false, wire, () => normalizeOpenAIChatUsage(wire).usage);
      }
      json(res, 200, out);
      return;
    }
    const includeUsage = body.stream_options?.include_usage === true && !scenario.ignoreIncludeUsage && !scenario.omitUsage;
    const chunk = (choices: unknown[]): Record<string, unknown> => {
      const c: Record<string, unknown> = { ...base, service_tier: 'default', choices };
      if (includeUsage) c.usage = null;
      return c;
    };
    const events: Array<[undefined, unknown]> = [];
    if (a.tool) {
      events.push([undefined, chunk([{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: a.tool.id, type: 'function', function: { name: a.tool.name, arguments: '' } }] }, logprobs: null, finish_reason: null }])]);
      for (const p of a.tool.argPieces) events.push([undefined, chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: p } }] }, logprobs: null, finish_reason: null }])]);
    } else {
      events.push([undefined, chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }])]);
      for (const p of a.pieces) events.push([undefined, chunk([{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }])]);
    }
    events.push([undefined, chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: a.tool ? 'tool_calls' : 'stop' }])]);
    if (includeUsage) {
      events.push([undefined, { ...base, service_tier: 'default', choices: [], usage: wire }]);
      recordOnComplete(res, () => record(a, 'openai.chat', true, wire, () => normalizeOpenAIChatUsage(wire).usage));
    }
    await writeEvents(res, events, true, a, 'openai.chat');
  }

  /** A streamed usage counts as sent only if the whole stream went out. */
  function recordOnComplete(res: ServerResponse, fn: () => void): void {
    res.on('finish', fn);
  }

  // --- OpenAI responses --------------------------------------------------------------------------------------
  function responsesWireUsage(u: Usage): Record<string, unknown> {
    const input = u.input + u.cache_read + u.cache_write;
    const output = u.output + u.reasoning;
    return {
      input_tokens: input,
      input_tokens_details: { cached_tokens: u.cache_read },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: u.reasoning },
      total_tokens: input + output,
    };
  }

  async function responses(body: any, res: ServerResponse): Promise<void> {
    const model = String(body.model);
    const msgs: EstimateChatMessage[] = [];
    if (typeof body.instructions === 'string') msgs.push({ role: 'system', content: body.instructions });
    if (typeof body.input === 'string') msgs.push({ role: 'user', content: body.input });
    else if (Array.isArray(body.input)) for (const item of body.input) msgs.push({ role: item?.role ?? 'tool', content: item?.content ?? item });
    const a = answer({ ...body, tools: undefined }, openAIPrompt(model, msgs), false);
    const id = `resp_mock_${a.n}`;
    const msgId = `msg_mock_${a.n}`;
    const wire = responsesWireUsage(a.usage);
    const full = (status: string, withOutput: boolean): Record<string, unknown> => ({
      id,
      object: 'response',
      created_at: created(),
      status,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      model,
      output: withOutput
        ? [{ type: 'message', id: msgId, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: a.text, annotations: [] }] }]
        : [],
      parallel_tool_calls: true,
      service_tier: 'default',
      usage: withOutput && !scenario.omitUsage ? wire : null,
    });
    if (body.stream !== true) {
      if (!scenario.omitUsage) record(a, 'openai.responses', false, wire, () => normalizeOpenAIResponsesUsage(wire).usage);
      json(res, 200, full('completed', true));
      return;
    }
    let seq = 0;
    const ev = (type: string, data: Record<string, unknown>): [string, unknown] => [type, { type, sequence_number: seq++, ...data }];
    const events: Array<[string, unknown]> = [
      ev('response.created', { response: full('in_progress', false) }),
      ev('response.output_item.added', { output_index: 0, item: { type: 'message', id: msgId, status: 'in_progress', role: 'assistant', content: [] } }),
      ev('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
    ];
    for (const p of a.pieces) events.push(ev('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: p }));
    events.push(ev('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text: a.text }));
    events.push(ev('response.completed', { response: full('completed', true) }));
    if (!scenario.omitUsage) recordOnComplete(res, () => record(a, 'openai.responses', true, wire, () => normalizeOpenAIResponsesUsage(wire).usage));
    await writeEvents(res, events, false, a, 'openai.responses');
  }

  // --- OpenAI embeddings -------------------------------------------------------------------------------------
  function embeddings(body: any, res: ServerResponse): void {
    const model = String(body.model);
    const inputs: unknown[] = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input];
    let tokens = 0;
    for (const i of inputs) tokens += typeof i === 'string' ? estimateTokens(i, model) : Array.isArray(i) ? i.length : 0;
    const n = ++counter;
    const data = inputs.map((_, index) => {
      const v = new Float32Array(8);
      for (let k = 0; k < 8; k++) v[k] = ((n * 31 + index * 7 + k) % 17) / 17;
      const embedding = body.encoding_format === 'base64' ? Buffer.from(v.buffer).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    const out: Record<string, unknown> = { object: 'list', data, model };
    if (!scenario.omitUsage) {
      const fixed = scenario.fixedUsage;
      const promptTokens = fixed ? fixed.input : tokens;
      const wire = { prompt_tokens: promptTokens, total_tokens: promptTokens };
      out.usage = wire;
      const s: SentUsage = { requestNumber: n, api: 'openai.embeddings', model, stream: false, raw: wire, usage: bucketsOf(() => normalizeOpenAIChatUsage(wire).usage, { ...zeroUsage(), input: promptTokens }) };
      const user = userOf(body);
      if (user !== undefined) s.user = user;
      usageSent.push(s);
    }
    json(res, 200, out);
  }

  // --- Anthropic messages ------------------------------------------------------------------------------------
  function anthropicWireUsage(u: Usage): Record<string, unknown> {
    const oneHour = u.cache_write_1h ?? 0;
    return {
      input_tokens: u.input,
      cache_creation_input_tokens: u.cache_write,
      cache_read_input_tokens: u.cache_read,
      cache_creation: { ephemeral_5m_input_tokens: u.cache_write - oneHour, ephemeral_1h_input_tokens: oneHour },
      // Thinking is billed and reported as output.
      output_tokens: u.output + u.reasoning,
      service_tier: 'standard',
    };
  }

  async function anthropicMessages(body: any, res: ServerResponse): Promise<void> {
    const model = String(body.model);
    const msgs: EstimateChatMessage[] = [];
    if (body.system !== undefined) msgs.push({ role: 'system', content: body.system });
    if (Array.isArray(body.messages)) msgs.push(...body.messages);
    const last = msgs[msgs.length - 1] as any;
    const lastIsToolResult = Array.isArray(last?.content) && last.content.some((b: any) => b?.type === 'tool_result');
    const c = anthropicCache.count(model, msgs, body.cache_control);
    const prompt: PromptCount = { input: c.input, cache_read: c.cacheRead, cache_write: c.cacheWrite5m + c.cacheWrite1h, cache_write_1h: c.cacheWrite1h };
    // Anthropic reports extended thinking inside output_tokens; the mock does not simulate it.
    const a = answer({ ...body, reasoning_effort: undefined, reasoning: undefined }, prompt, lastIsToolResult);
    // Anthropic counts with its own tokenizer; the mock uses o200k for every model.
    if (!scenario.fixedUsage) a.usage.output = a.tool ? estimateTokens(a.tool.name + a.tool.args) : estimateTokens(a.text);
    const id = `msg_mock_${a.n}`;
    const wire = anthropicWireUsage(a.usage);
    const stopReason = a.tool ? 'tool_use' : 'end_turn';
    const content = a.tool ? [{ type: 'tool_use', id: `toolu_mock_${a.n}`, name: a.tool.name, input: JSON.parse(a.tool.args) }] : [{ type: 'text', text: a.text }];
    const usageOut = scenario.omitUsage ? undefined : wire;
    if (body.stream !== true) {
      if (usageOut) usageSent.push(sentUsage(a, 'anthropic.messages', false, wire, () => normalizeAnthropicUsage(wire).usage));
      json(res, 200, { id, type: 'message', role: 'assistant', model, content, stop_reason: stopReason, stop_sequence: null, usage: usageOut });
      return;
    }
    const startUsage = usageOut ? { ...wire, output_tokens: 1 } : undefined;
    const events: Array<[string, unknown]> = [
      ['message_start', { type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: startUsage } }],
    ];
    if (a.tool) {
      events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: `toolu_mock_${a.n}`, name: a.tool.name, input: {} } }]);
      for (const p of a.tool.argPieces) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: p } }]);
    } else {
      events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
      events.push(['ping', { type: 'ping' }]);
      for (const p of a.pieces) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } }]);
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
    // message_delta counters are cumulative totals for the whole message (they repeat message_start's input).
    const deltaUsage = usageOut
      ? {
          input_tokens: wire.input_tokens,
          cache_creation_input_tokens: wire.cache_creation_input_tokens,
          cache_read_input_tokens: wire.cache_read_input_tokens,
          output_tokens: wire.output_tokens,
        }
      : undefined;
    events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: deltaUsage ?? { output_tokens: 0 } }]);
    events.push(['message_stop', { type: 'message_stop' }]);
    if (usageOut) {
      recordOnComplete(res, () =>
        usageSent.push(sentUsage(a, 'anthropic.messages', true, wire, () => normalizeAnthropicUsage(wire).usage)),
      );
    }
    await writeEvents(res, events, false, a, 'anthropic.messages');
  }

  function json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-request-id': `req_mock_${counter}` });
    res.end(text);
  }

  function providerError(res: ServerResponse, path: string, status: number): void {
    const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'api_error' : 'invalid_request_error';
    const message = `mock provider: forced ${status}`;
    const body = path.startsWith('/v1/messages') ? { type: 'error', error: { type, message } } : { error: { message, type, param: null, code: null } };
    const text = JSON.stringify(body);
    // The SDKs honour retry-after-ms: retries in tests stay fast.
    res.writeHead(status, { 'content-type': 'application/json', 'retry-after-ms': '5', 'x-request-id': `req_mock_err` });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    // Azure OpenAI's wire path: /openai/deployments/{deployment}/chat/completions (the SDK's AzureOpenAI client
    // puts /deployments/{model} under its base URL). The deployment is routed like the plain OpenAI path.
    const route = path.replace(/^\/v1\/deployments\/[^/]+\//, '/v1/');
    const raw = await readBody(req);
    let body: any = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        throw new HttpError(400, 'request body is not JSON');
      }
    }
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    if (req.method !== 'POST') throw new HttpError(405, 'only POST is supported');
    if (body === null || typeof body !== 'object' || typeof body.model !== 'string') throw new HttpError(400, 'body must be an object with a model');
    if (scenario.failures.count > 0) {
      scenario.failures.count--;
      providerError(res, path, scenario.failures.status);
      return;
    }
    switch (route) {
      case '/v1/chat/completions':
        return chatCompletions(body, res);
      case '/v1/responses':
        return responses(body, res);
      case '/v1/embeddings':
        return embeddings(body, res);
      case '/v1/messages':
        return anthropicMessages(body, res);
      default:
        throw new HttpError(404, `unknown path ${path}`);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (!res.headersSent) {
        res.writeHead(status, { 'content-type': 'application/json', 'x-should-retry': 'false' });
        res.end(JSON.stringify({ error: { message: String((err as Error).message ?? err), type: 'invalid_request_error' } }));
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;

  return {
    url,
    openaiBaseURL: `${url}/v1`,
    requests,
    usageSent,
    streamsSent,
    failNext(count, status) {
      scenario.failures = { count, status };
    },
    breakNextStream(chunks) {
      scenario.breakAfter = chunks;
    },
    setFixedUsage(usage) {
      scenario.fixedUsage = usage ? { ...usage } : undefined;
    },
    setOmitUsage(omit) {
      scenario.omitUsage = omit;
    },
    setIgnoreIncludeUsage(ignore) {
      scenario.ignoreIncludeUsage = ignore;
    },
    setChunkDelay(millis) {
      scenario.chunkDelayMillis = millis;
    },
    reset() {
      Object.assign(scenario, initialScenario());
      requests.length = 0;
      usageSent.length = 0;
      streamsSent.length = 0;
      openaiCache.clear();
      anthropicCache.clear();
    },
    totalUsageSent() {
      return usageSent.reduce((sum, s) => addUsage(sum, s.usage), zeroUsage());
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
