/**
 * Bundling mistakes are told once, with the fix: a second copy of tokenmeter in the process (whose withUser
 * still reaches the calls the first copy records), an SDK copy that sends requests tokenmeter never patched, and
 * withUser scopes that no instrumented call ever starts in.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import OpenAIv5 from 'openai-v5';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { resetBundlingCounters, SCOPE_CHECK_MIN } from '../../src/instrumentation/bundling.js';
import { instrument, withUser } from '../../src/instrumentation/index.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { onlySpan, useHarnessWithMock } from './harness.js';

const env = useHarnessWithMock({ seed: 8 });
const messages = [{ role: 'user' as const, content: 'Which copy am I?' }];
let openai: OpenAI;
let lines: string[];
let restore: () => void;

beforeAll(() => {
  instrument(OpenAI);
  openai = new OpenAI({ apiKey: 'k', baseURL: env.mock.openaiBaseURL, maxRetries: 0 });
});
beforeEach(() => {
  resetBundlingCounters();
  lines = [];
  restore = captureWarnings(lines);
});
afterEach(() => restore());

describe('an SDK used but never patched', () => {
  it('says nothing while every call goes through a patched SDK', async () => {
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(lines).toEqual([]);
  });

  it('names the unpatched openai copy, its version and the fix, once', async () => {
    // openai 5 is a second copy of the SDK here that nothing patched, like the one a bundler puts into an app.
    const bundled = new OpenAIv5({ apiKey: 'k', baseURL: env.mock.openaiBaseURL, maxRetries: 0 });
    await bundled.chat.completions.create({ model: 'gpt-4o-mini', messages });
    await bundled.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(env.h.finished()).toHaveLength(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tokenmeter: warning: openai 5\.\d+\.\d+ sent a request \(\/v1\/chat\/completions\) that tokenmeter did not instrument/);
    expect(lines[0]).toContain('serverExternalPackages: ["tokenmeter", "openai", "@anthropic-ai/sdk"]');
  });

  it('and an unpatched Anthropic SDK', async () => {
    const anthropic = new Anthropic({ apiKey: 'k', baseURL: env.mock.url, maxRetries: 0 });
    await anthropic.messages.create({ model: 'claude-sonnet-5', max_tokens: 100, messages });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/@anthropic-ai\/sdk 1\.\d+\.\d+ sent a request \(\/v1\/messages\) that tokenmeter did not instrument/);
  });
});

describe('withUser that no call sees', () => {
  it(`warns after ${SCOPE_CHECK_MIN} scopes and ${SCOPE_CHECK_MIN} calls, none of them inside a scope`, async () => {
    for (let i = 0; i < SCOPE_CHECK_MIN; i++) withUser({ id: `u${i}` }, () => undefined);
    for (let i = 0; i < SCOPE_CHECK_MIN - 1; i++) await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(lines).toEqual([]);
    await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/withUser\(\) ran 10 times, but none of the 10 LLM calls since started inside one/);
  });

  it('stays quiet when calls start inside withUser', async () => {
    for (let i = 0; i < SCOPE_CHECK_MIN * 2; i++) {
      await withUser({ id: `u${i}` }, () => openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }));
    }
    expect(lines).toEqual([]);
  });
});

describe('a second copy of tokenmeter', () => {
  it('warns once with both locations, and its withUser reaches the calls the first copy records', async () => {
    vi.resetModules();
    const warn2 = await import('../../src/instrumentation/warn.js');
    const lines2: string[] = [];
    const restore2 = warn2.captureWarnings(lines2);
    try {
      const scope2 = await import('../../src/instrumentation/scope.js');
      expect(lines2).toHaveLength(1);
      expect(lines2[0]).toMatch(/a second copy of tokenmeter was loaded in this process \(file:.*scope\.ts and file:.*scope\.ts\)/);
      await scope2.withUser({ id: 'user-of-the-bundled-copy', plan: 'pro' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
      const span = onlySpan(env.h);
      expect(span.attributes['user.id']).toBe('user-of-the-bundled-copy');
      expect(span.attributes['tokenmeter.plan']).toBe('pro');
    } finally {
      restore2();
    }
  });
});
