/**
 * The mock provider caches prompts and reasons like the providers do, with every count from the tokenizer:
 * Anthropic `cache_control` breakpoints (write, then read; 5m and 1h TTLs; minimum cacheable length), OpenAI's
 * automatic prefix caching (1024 tokens, then 128-token steps), and hidden reasoning text for reasoning models.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  anthropicMinCacheableTokens,
  generateReasoning,
  generateWords,
  openAICachedTokens,
  startMockProvider,
  type MockProvider,
} from '../../src/mock-provider/index.js';
import { ESTIMATE_REPLY_PRIMING_TOKENS, estimateChatTokens, estimateTokens, type EstimateChatMessage } from '../../src/usage/index.js';

const SEED = 5;
const WORDS = 8;
let mock: MockProvider;
let now = 1_000_000;

beforeAll(async () => {
  mock = await startMockProvider({ seed: SEED, responseWords: WORDS, nowMillis: () => now });
});
afterAll(async () => {
  await mock.close();
});
beforeEach(() => {
  mock.reset();
  now = 1_000_000;
});

async function post(path: string, body: unknown): Promise<any> {
  const res = await fetch(`${mock.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json();
}

/** A long reference text: about 1.2 tokens per word. */
const LONG = generateWords(3, 1, 1500).join(' ');
const OTHER_LONG = generateWords(4, 1, 1500).join(' ');
/** Tokens a message list contributes to a prompt (without the reply priming, counted once per prompt). */
const prefix = (messages: EstimateChatMessage[]) => estimateChatTokens(messages) - ESTIMATE_REPLY_PRIMING_TOKENS;

describe('mock provider: Anthropic prompt caching', () => {
  const SONNET = 'claude-sonnet-4-20250514';
  const request = (question: string, ttl?: '5m' | '1h', model = SONNET) => ({
    model,
    max_tokens: 100,
    system: [{ type: 'text', text: LONG, cache_control: ttl ? { type: 'ephemeral', ttl } : { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: question }],
    metadata: { user_id: 'ann' },
  });
  const systemTokens = () => prefix([{ role: 'system', content: [{ type: 'text', text: LONG }] }]);
  const totalTokens = (question: string) => estimateChatTokens([{ role: 'system', content: [{ type: 'text', text: LONG }] }, { role: 'user', content: question }]);

  it('writes the prefix up to a cache_control block, then reads it; input_tokens is the rest', async () => {
    expect(systemTokens()).toBeGreaterThan(1024);
    const first = (await post('/v1/messages', request('First question?'))).usage;
    expect(first).toMatchObject({
      input_tokens: totalTokens('First question?') - systemTokens(),
      cache_creation_input_tokens: systemTokens(),
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: systemTokens(), ephemeral_1h_input_tokens: 0 },
    });
    const second = (await post('/v1/messages', request('A different question, same system prompt?'))).usage;
    expect(second).toMatchObject({
      input_tokens: totalTokens('A different question, same system prompt?') - systemTokens(),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: systemTokens(),
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    });
    expect(mock.usageSent.map((s) => [s.usage.cache_write, s.usage.cache_read])).toEqual([
      [systemTokens(), 0],
      [0, systemTokens()],
    ]);
    // Another model has its own cache.
    const opus = (await post('/v1/messages', request('First question?', undefined, 'claude-opus-4-1-20250805'))).usage;
    expect(opus.cache_creation_input_tokens).toBe(systemTokens());
  });

  it('streams the same counts in message_start and message_delta', async () => {
    await post('/v1/messages', request('warm up'));
    const text = await (await fetch(`${mock.url}/v1/messages`, { method: 'POST', body: JSON.stringify({ ...request('streamed'), stream: true }) })).text();
    const start = JSON.parse(/event: message_start\ndata: (.*)/.exec(text)![1]);
    const delta = JSON.parse(/event: message_delta\ndata: (.*)/.exec(text)![1]);
    expect(start.message.usage).toMatchObject({ cache_read_input_tokens: systemTokens(), cache_creation_input_tokens: 0 });
    expect(delta.usage).toMatchObject({ cache_read_input_tokens: systemTokens(), input_tokens: totalTokens('streamed') - systemTokens() });
    expect(mock.usageSent.at(-1)).toMatchObject({ stream: true, user: 'ann', usage: { cache_read: systemTokens(), cache_write: 0 } });
  });

  it('expires a 5-minute entry after 5 minutes without use; a read refreshes it', async () => {
    await post('/v1/messages', request('q'));
    now += 4 * 60_000;
    expect((await post('/v1/messages', request('q'))).usage.cache_read_input_tokens).toBe(systemTokens());
    now += 4 * 60_000; // 8 minutes after the write, 4 after the last read
    expect((await post('/v1/messages', request('q'))).usage.cache_read_input_tokens).toBe(systemTokens());
    now += 5 * 60_000 + 1;
    const expired = (await post('/v1/messages', request('q'))).usage;
    expect(expired).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: systemTokens() });
  });

  it('writes a 1-hour entry as ephemeral_1h_input_tokens and keeps it for an hour', async () => {
    const first = (await post('/v1/messages', request('q', '1h'))).usage;
    expect(first).toMatchObject({ cache_creation_input_tokens: systemTokens(), cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: systemTokens() } });
    expect(mock.usageSent[0].usage).toMatchObject({ cache_write: systemTokens(), cache_write_1h: systemTokens() });
    now += 50 * 60_000;
    expect((await post('/v1/messages', request('q', '1h'))).usage.cache_read_input_tokens).toBe(systemTokens());
    now += 60 * 60_000 + 1;
    expect((await post('/v1/messages', request('q', '1h'))).usage.cache_creation_input_tokens).toBe(systemTokens());
  });

  it('reads the longest cached breakpoint and writes the rest, split by TTL', async () => {
    const doc = (question: string) => ({
      model: SONNET,
      max_tokens: 10,
      system: [{ type: 'text', text: LONG, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: OTHER_LONG, cache_control: { type: 'ephemeral' } }, { type: 'text', text: question }] },
      ],
    });
    const sys = systemTokens();
    const withDoc = prefix([
      { role: 'system', content: [{ type: 'text', text: LONG }] },
      { role: 'user', content: [{ type: 'text', text: OTHER_LONG }] },
    ]);
    const first = (await post('/v1/messages', doc('q1'))).usage;
    expect(first).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: withDoc, cache_creation: { ephemeral_1h_input_tokens: sys, ephemeral_5m_input_tokens: withDoc - sys } });
    // After 10 minutes the 5-minute entry is gone; the 1-hour system prompt is read, the document rewritten.
    now += 10 * 60_000;
    const later = (await post('/v1/messages', doc('q2'))).usage;
    expect(later).toMatchObject({ cache_read_input_tokens: sys, cache_creation_input_tokens: withDoc - sys, cache_creation: { ephemeral_1h_input_tokens: 0, ephemeral_5m_input_tokens: withDoc - sys } });
  });

  it('does not cache a prefix shorter than the model minimum (1024 Sonnet/Opus, 2048 Haiku 3.5, 4096 Haiku 4.5)', async () => {
    expect([SONNET, 'claude-opus-4-1', 'claude-3-5-haiku-20241022', 'claude-haiku-4-5', 'claude-opus-4-5'].map(anthropicMinCacheableTokens)).toEqual([1024, 1024, 2048, 4096, 4096]);
    const short = { model: SONNET, max_tokens: 5, system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'hi' }] };
    for (let i = 0; i < 2; i++) {
      const u = (await post('/v1/messages', short)).usage;
      expect(u).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0, input_tokens: estimateChatTokens([{ role: 'system', content: short.system }, ...short.messages]) });
    }
    // About 1,800 tokens: enough for Sonnet, too short for Haiku 3.5.
    expect(systemTokens()).toBeLessThan(2048);
    for (let i = 0; i < 2; i++) {
      const u = (await post('/v1/messages', request('q', '5m', 'claude-3-5-haiku-20241022'))).usage;
      expect(u).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0, input_tokens: totalTokens('q') });
    }
  });

  it('top-level cache_control (automatic caching) marks the last block', async () => {
    const auto = { model: SONNET, max_tokens: 5, cache_control: { type: 'ephemeral' }, messages: [{ role: 'user', content: LONG }] };
    const all = prefix([{ role: 'user', content: LONG }]);
    expect((await post('/v1/messages', auto)).usage).toMatchObject({ cache_creation_input_tokens: all, input_tokens: estimateChatTokens(auto.messages) - all });
    expect((await post('/v1/messages', auto)).usage).toMatchObject({ cache_read_input_tokens: all, cache_creation_input_tokens: 0 });
  });
});

describe('mock provider: OpenAI automatic prefix caching', () => {
  it('caches from 1024 tokens on, in 128-token steps', () => {
    expect([0, 1023, 1024, 1151, 1152, 1279, 1280, 5000].map(openAICachedTokens)).toEqual([0, 0, 1024, 1024, 1152, 1152, 1280, 4992]);
  });

  it('reports cached_tokens inside prompt_tokens for a repeated long prefix, never for a short prompt', async () => {
    const system = { role: 'system', content: LONG };
    const shared = estimateChatTokens([system], 'gpt-4o-mini') - ESTIMATE_REPLY_PRIMING_TOKENS;
    const ask = (q: string) => post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [system, { role: 'user', content: q }], user: 'olga' });
    const first = (await ask('one')).usage;
    expect(first.prompt_tokens).toBe(estimateChatTokens([system, { role: 'user', content: 'one' }], 'gpt-4o-mini'));
    expect(first.prompt_tokens_details.cached_tokens).toBe(0);
    const second = (await ask('two')).usage;
    expect(second.prompt_tokens).toBe(estimateChatTokens([system, { role: 'user', content: 'two' }], 'gpt-4o-mini'));
    expect(second.prompt_tokens_details.cached_tokens).toBe(1024 + Math.floor((shared - 1024) / 128) * 128);
    expect(mock.usageSent[1]).toMatchObject({ user: 'olga', usage: { cache_read: second.prompt_tokens_details.cached_tokens, input: second.prompt_tokens - second.prompt_tokens_details.cached_tokens } });
    // Another model does not share the cache.
    const other = (await post('/v1/chat/completions', { model: 'gpt-4o', messages: [system, { role: 'user', content: 'two' }] })).usage;
    expect(other.prompt_tokens_details.cached_tokens).toBe(0);
    // A short prompt is never cached, however often it is sent.
    for (let i = 0; i < 2; i++) {
      const short = (await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] })).usage;
      expect(short.prompt_tokens_details.cached_tokens).toBe(0);
    }
  });

  it('caches Responses API instructions the same way (input_tokens_details.cached_tokens)', async () => {
    const body = (input: string) => ({ model: 'gpt-4.1', instructions: LONG, input, user: 'rita' });
    await post('/v1/responses', body('first'));
    const u = (await post('/v1/responses', body('second'))).usage;
    const shared = estimateChatTokens([{ role: 'system', content: LONG }], 'gpt-4.1') - ESTIMATE_REPLY_PRIMING_TOKENS;
    expect(u.input_tokens_details.cached_tokens).toBe(openAICachedTokens(shared));
    expect(u.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(1024);
    expect(u.input_tokens).toBe(estimateChatTokens([{ role: 'system', content: LONG }, { role: 'user', content: 'second' }], 'gpt-4.1'));
  });
});

describe('mock provider: reasoning', () => {
  const messages = [{ role: 'user', content: 'Think about it.' }];

  it('reports the tokenizer count of the hidden reasoning text as reasoning tokens, scaled by effort', async () => {
    const counts: Record<string, number> = {};
    for (const effort of ['low', 'medium', 'high'] as const) {
      const body = await post('/v1/chat/completions', { model: 'o4-mini', messages, reasoning_effort: effort, user: 'rex' });
      const sent = mock.usageSent.at(-1)!;
      const reasoning = generateReasoning(SEED, sent.requestNumber, WORDS, effort);
      expect(sent.reasoningText).toBe(reasoning);
      expect(body.usage.completion_tokens_details.reasoning_tokens).toBe(estimateTokens(reasoning, 'o4-mini'));
      expect(body.usage.completion_tokens).toBe(estimateTokens(body.choices[0].message.content, 'o4-mini') + estimateTokens(reasoning, 'o4-mini'));
      expect(sent.usage).toMatchObject({ reasoning: estimateTokens(reasoning, 'o4-mini'), output: estimateTokens(body.choices[0].message.content, 'o4-mini') });
      expect(sent.user).toBe('rex');
      counts[effort] = sent.usage.reasoning;
    }
    expect(counts.low).toBeGreaterThan(0);
    expect(counts.medium).toBeGreaterThan(counts.low);
    expect(counts.high).toBeGreaterThan(counts.medium);
  });

  it('reasons by default for o-series and gpt-5 models (medium), never for gpt-4o or Claude', async () => {
    const o3 = (await post('/v1/chat/completions', { model: 'o3', messages })).usage;
    expect(o3.completion_tokens_details.reasoning_tokens).toBe(estimateTokens(generateReasoning(SEED, mock.usageSent.at(-1)!.requestNumber, WORDS, 'medium'), 'o3'));
    const gpt4o = (await post('/v1/chat/completions', { model: 'gpt-4o', messages })).usage;
    expect(gpt4o.completion_tokens_details.reasoning_tokens).toBe(0);
    expect(mock.usageSent.at(-1)!.reasoningText).toBeUndefined();
    const claude = await post('/v1/messages', { model: 'claude-sonnet-4-20250514', max_tokens: 10, messages });
    expect(claude.usage.output_tokens).toBe(estimateTokens(claude.content[0].text));
  });

  it('streams reasoning tokens in the final usage chunk and in Responses output_tokens_details', async () => {
    const text = await (
      await fetch(`${mock.openaiBaseURL}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'gpt-5-mini', messages, stream: true, stream_options: { include_usage: true }, reasoning_effort: 'minimal' }) })
    ).text();
    const last = JSON.parse(text.trim().split('\n\n').at(-2)!.slice(6));
    const sent = mock.usageSent.at(-1)!;
    expect(last.usage.completion_tokens_details.reasoning_tokens).toBe(estimateTokens(generateReasoning(SEED, sent.requestNumber, WORDS, 'minimal'), 'gpt-5-mini'));
    expect(sent.usage.reasoning).toBe(last.usage.completion_tokens_details.reasoning_tokens);
    const resp = await post('/v1/responses', { model: 'o4-mini', input: 'think hard', reasoning: { effort: 'high' } });
    const n = mock.usageSent.at(-1)!.requestNumber;
    expect(resp.usage.output_tokens_details.reasoning_tokens).toBe(estimateTokens(generateReasoning(SEED, n, WORDS, 'high'), 'o4-mini'));
    expect(resp.usage.output_tokens).toBe(estimateTokens(resp.output[0].content[0].text, 'o4-mini') + resp.usage.output_tokens_details.reasoning_tokens);
  });

  it('setFixedUsage still wins over caching and reasoning', async () => {
    mock.setFixedUsage({ input: 7, cache_read: 0, cache_write: 0, output: 3, reasoning: 0 });
    const u = (await post('/v1/chat/completions', { model: 'o4-mini', messages, reasoning_effort: 'high' })).usage;
    expect(u).toMatchObject({ prompt_tokens: 7, completion_tokens: 3, completion_tokens_details: { reasoning_tokens: 0 } });
  });
});
