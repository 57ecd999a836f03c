// Canned provider responses handed to the real SDKs through their `fetch` client option: no network, no server,
// so that what is measured is the SDK plus the instrumentation around it.

const enc = new TextEncoder();

/** Usage the canned responses report; the benchmark checks each variant recorded exactly these counts. */
export const OPENAI_USAGE = { json: { input: 42, output: 20 }, stream: { input: 42, output: 19 } };
export const ANTHROPIC_USAGE = { json: { input: 42, output: 20 }, stream: { input: 42, output: 16 } };
export const STREAM_CHUNKS = 20;

const openaiJson = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'The quick brown fox jumps over the lazy dog, twice over.', refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: OPENAI_USAGE.json.input,
    completion_tokens: OPENAI_USAGE.json.output,
    total_tokens: OPENAI_USAGE.json.input + OPENAI_USAGE.json.output,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  },
  service_tier: 'default',
  system_fingerprint: 'fp_bench',
});
const openaiJsonBytes = enc.encode(openaiJson);

function sse(data, event) {
  return enc.encode(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

/** 20 chunks: role, 17 content deltas, finish_reason, then the usage-only chunk (stream_options.include_usage). */
function openaiStreamChunks() {
  const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini-2024-07-18', system_fingerprint: 'fp_bench', service_tier: 'default' };
  const out = [];
  out.push(sse({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null }));
  for (let i = 0; i < STREAM_CHUNKS - 3; i++) {
    out.push(sse({ ...base, choices: [{ index: 0, delta: { content: ` word${i}` }, logprobs: null, finish_reason: null }], usage: null }));
  }
  out.push(sse({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null }));
  out.push(
    sse({
      ...base,
      choices: [],
      usage: {
        prompt_tokens: OPENAI_USAGE.stream.input,
        completion_tokens: OPENAI_USAGE.stream.output,
        total_tokens: OPENAI_USAGE.stream.input + OPENAI_USAGE.stream.output,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
    }),
  );
  out.push(sse('[DONE]'));
  return out;
}
const openaiStream = openaiStreamChunks();

const anthropicJsonBytes = enc.encode(
  JSON.stringify({
    id: 'msg_bench',
    type: 'message',
    role: 'assistant',
    model: 'claude-haiku-4-5-20251001',
    content: [{ type: 'text', text: 'The quick brown fox jumps over the lazy dog, twice over.' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: ANTHROPIC_USAGE.json.input,
      output_tokens: ANTHROPIC_USAGE.json.output,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      service_tier: 'standard',
    },
  }),
);

/** 20 events: message_start, content_block_start, 15 deltas, content_block_stop, message_delta (usage), message_stop. */
function anthropicStreamChunks() {
  const out = [];
  out.push(
    sse(
      {
        type: 'message_start',
        message: {
          id: 'msg_bench',
          type: 'message',
          role: 'assistant',
          model: 'claude-haiku-4-5-20251001',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: ANTHROPIC_USAGE.stream.input, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, service_tier: 'standard' },
        },
      },
      'message_start',
    ),
  );
  out.push(sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'));
  for (let i = 0; i < STREAM_CHUNKS - 5; i++) {
    out.push(sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ` word${i}` } }, 'content_block_delta'));
  }
  out.push(sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'));
  out.push(
    sse(
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { input_tokens: ANTHROPIC_USAGE.stream.input, output_tokens: ANTHROPIC_USAGE.stream.output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
      'message_delta',
    ),
  );
  out.push(sse({ type: 'message_stop' }, 'message_stop'));
  return out;
}
const anthropicStream = anthropicStreamChunks();

function streamOf(chunks) {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
}

const JSON_HEADERS = { 'content-type': 'application/json', 'x-request-id': 'req_bench' };
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'x-request-id': 'req_bench' };

/** A `fetch` returning a prebuilt response: JSON or an SSE stream, chosen by the request body's `stream` flag. */
export function cannedFetch(provider) {
  const json = provider === 'openai' ? openaiJsonBytes : anthropicJsonBytes;
  const chunks = provider === 'openai' ? openaiStream : anthropicStream;
  return async (_url, init) => {
    const body = typeof init?.body === 'string' ? init.body : '';
    if (body.includes('"stream":true')) return new Response(streamOf(chunks), { status: 200, headers: SSE_HEADERS });
    return new Response(json, { status: 200, headers: JSON_HEADERS });
  };
}
