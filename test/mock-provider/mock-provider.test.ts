import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { estimateChatTokens, estimateTokens } from '../../src/usage/index.js';

let mock: MockProvider;

beforeAll(async () => {
  mock = await startMockProvider({ seed: 9, responseWords: 6, createdSeconds: 1_700_000_000 });
});
afterAll(async () => {
  await mock.close();
});

async function post(path: string, body: unknown, raw?: string): Promise<Response> {
  return fetch(`${mock.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
}

function sseData(text: string): Array<{ event?: string; data: string }> {
  return text
    .split('\n\n')
    .filter((b) => b.trim().length > 0)
    .map((block) => {
      const lines = block.split('\n');
      return { event: lines.find((l) => l.startsWith('event: '))?.slice(7), data: lines.find((l) => l.startsWith('data: '))!.slice(6) };
    });
}

const messages = [{ role: 'user', content: 'Count me.' }];

describe('mock provider', () => {
  it('listens on a loopback port', () => {
    expect(mock.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(mock.openaiBaseURL).toBe(`${mock.url}/v1`);
  });

  it('answers chat completions with counts of the actual prompt and answer text, and records them', async () => {
    const before = mock.usageSent.length;
    const res = await post('/v1/chat/completions', { model: 'gpt-4o', messages });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    const text: string = body.choices[0].message.content;
    expect(text.split(' ').length).toBe(6);
    expect(body.usage.prompt_tokens).toBe(estimateChatTokens(messages, 'gpt-4o'));
    expect(body.usage.completion_tokens).toBe(estimateTokens(text, 'gpt-4o'));
    expect(mock.usageSent.length).toBe(before + 1);
    expect(mock.usageSent.at(-1)?.usage).toEqual({ input: body.usage.prompt_tokens, cache_read: 0, cache_write: 0, output: body.usage.completion_tokens, reasoning: 0 });
  });

  it('is deterministic for a seed', async () => {
    const other = await startMockProvider({ seed: 9, responseWords: 6 });
    try {
      const fresh = async (m: MockProvider) => ((await (await fetch(`${m.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'x', messages }) })).json()) as any).choices[0].message.content;
      const third = await startMockProvider({ seed: 9, responseWords: 6 });
      try {
        expect(await fresh(other)).toBe(await fresh(third));
      } finally {
        await third.close();
      }
    } finally {
      await other.close();
    }
  });

  it('streams chat SSE with usage only when asked, ending with [DONE]', async () => {
    const plain = sseData(await (await post('/v1/chat/completions', { model: 'gpt-4o', messages, stream: true })).text());
    expect(plain.at(-1)?.data).toBe('[DONE]');
    expect(plain.slice(0, -1).every((e) => !('usage' in JSON.parse(e.data)))).toBe(true);
    const withUsage = sseData(await (await post('/v1/chat/completions', { model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } })).text());
    const chunks = withUsage.slice(0, -1).map((e) => JSON.parse(e.data));
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-1).choices).toEqual([]);
    expect(chunks.at(-1).usage.prompt_tokens).toBe(estimateChatTokens(messages, 'gpt-4o'));
    mock.setIgnoreIncludeUsage(true);
    const ignored = sseData(await (await post('/v1/chat/completions', { model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } })).text());
    mock.setIgnoreIncludeUsage(false);
    expect(ignored.slice(0, -1).every((e) => !('usage' in JSON.parse(e.data)))).toBe(true);
  });

  it('streams Anthropic events with cumulative message_delta usage and the cache split', async () => {
    mock.setFixedUsage({ input: 3, cache_read: 100, cache_write: 40, cache_write_1h: 10, output: 7, reasoning: 0 });
    try {
      const events = sseData(await (await post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 10, messages, stream: true })).text());
      expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['message_start', 'content_block_delta', 'message_delta', 'message_stop']));
      const start = JSON.parse(events[0].data);
      expect(start.message.usage).toMatchObject({ input_tokens: 3, cache_read_input_tokens: 100, cache_creation_input_tokens: 40, cache_creation: { ephemeral_5m_input_tokens: 30, ephemeral_1h_input_tokens: 10 }, output_tokens: 1 });
      const delta = JSON.parse(events.find((e) => e.event === 'message_delta')!.data);
      expect(delta.usage).toEqual({ input_tokens: 3, cache_creation_input_tokens: 40, cache_read_input_tokens: 100, output_tokens: 7 });
      expect(mock.usageSent.at(-1)?.usage).toEqual({ input: 3, cache_read: 100, cache_write: 40, cache_write_1h: 10, output: 7, reasoning: 0 });
    } finally {
      mock.setFixedUsage(undefined);
    }
  });

  it('forces error statuses for the next N requests', async () => {
    mock.failNext(2, 429);
    const a = await post('/v1/chat/completions', { model: 'm', messages });
    const b = await post('/v1/messages', { model: 'm', messages, max_tokens: 1 });
    const c = await post('/v1/chat/completions', { model: 'm', messages });
    expect([a.status, b.status, c.status]).toEqual([429, 429, 200]);
    expect(a.headers.get('retry-after-ms')).toBe('5');
    expect(((await b.json()) as any).type).toBe('error');
  });

  it('breaks a stream after K events, and does not record usage it never sent', async () => {
    const before = mock.usageSent.length;
    mock.breakNextStream(2);
    const res = await post('/v1/chat/completions', { model: 'm', messages, stream: true, stream_options: { include_usage: true } });
    await expect(res.text()).rejects.toThrow();
    expect(mock.usageSent.length).toBe(before);
  });

  it('rejects malformed, hostile and oversized requests with clear errors', async () => {
    expect((await post('/v1/chat/completions', undefined, '{not json')).status).toBe(400);
    expect((await post('/v1/chat/completions', { messages })).status).toBe(400);
    expect((await post('/v1/unknown', { model: 'm' })).status).toBe(404);
    expect((await fetch(`${mock.url}/v1/chat/completions`)).status).toBe(405);
    const huge = await post('/v1/chat/completions', undefined, `{"model":"m","pad":"${'x'.repeat(17 * 1024 * 1024)}"}`).catch((e: unknown) => e);
    expect(huge instanceof Response ? huge.status : 'connection closed').toSatisfy((s: unknown) => s === 413 || s === 'connection closed');
    // Still serving.
    expect((await post('/v1/chat/completions', { model: 'm', messages })).status).toBe(200);
  });

  it('reset() clears the scenario and the records', async () => {
    const m = await startMockProvider({ seed: 4 });
    try {
      m.failNext(5, 429);
      m.setFixedUsage({ input: 1, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 });
      expect((await fetch(`${m.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages }) })).status).toBe(429);
      expect(m.requests.length).toBe(1);
      m.reset();
      expect(m.requests.length).toBe(0);
      const res = await fetch(`${m.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages }) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(estimateChatTokens(messages, 'm'));
      expect(m.usageSent.length).toBe(1);
    } finally {
      await m.close();
    }
  });

  it('sums what it sent', () => {
    const total = mock.totalUsageSent();
    expect(total.input).toBe(mock.usageSent.reduce((n, s) => n + s.usage.input, 0));
  });
});

describe('mock provider: what a stream really sent', () => {
  it('records a complete stream with its text and output tokens', async () => {
    mock.reset();
    const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    await res.text();
    await expect.poll(() => mock.streamsSent.length).toBe(1);
    const [s] = mock.streamsSent;
    expect(s).toMatchObject({ api: 'openai.chat', completed: true, clientClosed: false });
    expect(s.eventsSent).toBe(s.eventsTotal);
    expect(s.outputTokensSent).toBe(mock.usageSent[0].usage.output);
    expect(s.outputTokensSent).toBe(estimateTokens(s.textSent, 'gpt-4o-mini'));
  });

  it('stops generating when the client goes away and records how far it got', async () => {
    mock.reset();
    mock.setChunkDelay(20);
    const ac = new AbortController();
    const res = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 100, messages, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await expect.poll(() => mock.streamsSent.length).toBe(1);
    const [s] = mock.streamsSent;
    expect(s).toMatchObject({ api: 'anthropic.messages', completed: false, clientClosed: true });
    expect(s.eventsSent).toBeLessThan(s.eventsTotal);
    // A cut stream's usage (sent in its last events) never went out.
    expect(mock.usageSent).toEqual([]);
  });
});
