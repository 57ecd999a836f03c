import { describe, it, expect, afterEach } from 'vitest';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { createWorkload } from '../../src/demo/workload.js';
import { runWorkload, type WithUser } from '../../src/demo/workload-runner.js';
import { attributeSentUsage } from '../../src/demo/mock-record.js';
import { TOKEN_TYPES } from '../../src/contract/names.js';

let mock: MockProvider | undefined;
afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

function clientsFor(m: MockProvider) {
  return {
    openai: new OpenAI({ apiKey: 'test', baseURL: m.openaiBaseURL, maxRetries: 0 }),
    anthropic: new Anthropic({ apiKey: 'test', baseURL: m.url, maxRetries: 0 }),
  };
}

// A plain pass-through: this test checks the workload and the mock's record, not the instrumentation.
const noAttribution: WithUser = (_user, fn) => fn();

describe('workload runner (real SDKs against the mock provider)', () => {
  it('makes every planned call through the SDKs, and the mock attributes all the usage it sent to the users', async () => {
    mock = await startMockProvider({ seed: 1 });
    const workload = createWorkload({ seed: 5, users: 6 });
    const errors: unknown[] = [];
    const result = await runWorkload({
      workload,
      clients: clientsFor(mock),
      withUser: noAttribution,
      rate: 200,
      durationSeconds: 0.2,
      concurrency: 4,
      signal: new AbortController().signal,
      onError: (e) => errors.push(e),
    });
    expect(errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.started).toBeGreaterThan(20);
    expect(mock.requests).toHaveLength(result.started);
    // Without the instrumentation nobody asks for the usage chunk of an OpenAI chat stream, so the mock sends none
    // for those (under tokenmeter/register the instrumentation asks for it).
    const withoutUsage = mock.requests.filter((r) => r.path === '/v1/chat/completions' && r.body.stream === true).length;
    expect(withoutUsage).toBeGreaterThan(0);
    expect(mock.usageSent).toHaveLength(result.started - withoutUsage);

    const record = attributeSentUsage(mock.requests, mock.usageSent);
    expect(record.calls).toBe(result.started - withoutUsage);
    const total = mock.totalUsageSent();
    for (const t of TOKEN_TYPES) expect(record.total[t]).toBe(total[t]);
    let sumOverUsers = 0;
    for (const u of Object.values(record.users)) sumOverUsers += u.calls;
    expect(sumOverUsers).toBe(record.calls);
    expect(Object.keys(record.users).every((id) => workload.users.some((u) => u.id === id))).toBe(true);
    // The mock names the user on each answer; matching answers to requests by order gives the same record.
    expect(mock.usageSent.every((s) => typeof s.user === 'string')).toBe(true);
    expect(attributeSentUsage(mock.requests, mock.usageSent.map(({ user: _user, ...s }) => s))).toEqual(record);
    // The workload's shared system prompts hit the prompt caches, and o4-mini reasons.
    expect(record.total.cache_write).toBeGreaterThan(0);
    expect(record.total.cache_read).toBeGreaterThan(0);
    expect(record.total.reasoning).toBeGreaterThan(0);
    // Streaming and non-streaming calls to both providers went out.
    const kinds = new Set(mock.requests.map((r) => `${r.path}:${r.body.stream === true}`));
    expect(kinds).toEqual(new Set(['/v1/chat/completions:true', '/v1/chat/completions:false', '/v1/messages:true', '/v1/messages:false']));
  });

  it('stops starting calls when aborted and waits for the calls in flight', async () => {
    mock = await startMockProvider({ seed: 1, chunkDelayMillis: 5 });
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 150);
    const result = await runWorkload({
      workload: createWorkload({ seed: 1, users: 3 }),
      clients: clientsFor(mock),
      withUser: noAttribution,
      rate: 50,
      concurrency: 2,
      signal: stop.signal,
    });
    expect(result.started).toBeGreaterThan(0);
    expect(result.failed).toBe(0);
    // Everything started was answered before runWorkload returned.
    expect(mock.requests).toHaveLength(result.started);
  });

  it('refuses a request that does not match the mock record', () => {
    expect(() =>
      attributeSentUsage([{ method: 'POST', path: '/v1/messages', body: { model: 'a', metadata: { user_id: 'x' } } }], [
        { requestNumber: 1, model: 'b', stream: false, usage: { input: 1, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 } },
      ]),
    ).toThrow(/does not match/);
    expect(() =>
      attributeSentUsage([{ method: 'POST', path: '/v1/messages', body: { model: 'a' } }], [
        { requestNumber: 1, model: 'a', stream: false, usage: { input: 1, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 } },
      ]),
    ).toThrow(/no user/);
  });
});
