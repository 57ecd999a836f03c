import { describe, expect, it } from 'vitest';
import { GENERIC_OPENAI_COMPATIBLE, serverInfo } from '../../src/instrumentation/provider.js';

describe('provider inference from the OpenAI client base URL', () => {
  it.each([
    ['https://api.openai.com/v1', 'openai', 'api.openai.com', 443],
    ['https://myres.openai.azure.com/openai', 'azure.ai.openai', 'myres.openai.azure.com', 443],
    ['https://myres.cognitiveservices.azure.com/openai/v1', 'azure.ai.openai', 'myres.cognitiveservices.azure.com', 443],
    ['https://openrouter.ai/api/v1', 'openrouter', 'openrouter.ai', 443],
    ['https://api.groq.com/openai/v1', 'groq', 'api.groq.com', 443],
    ['https://api.deepseek.com', 'deepseek', 'api.deepseek.com', 443],
    ['https://api.together.xyz/v1', 'together', 'api.together.xyz', 443],
    ['https://api.mistral.ai/v1', 'mistral_ai', 'api.mistral.ai', 443],
    ['http://127.0.0.1:11434/v1', GENERIC_OPENAI_COMPATIBLE, '127.0.0.1', 11434],
    ['http://vllm.internal/v1', GENERIC_OPENAI_COMPATIBLE, 'vllm.internal', 80],
  ])('%s → %s', (url, provider, address, port) => {
    expect(serverInfo(url, GENERIC_OPENAI_COMPATIBLE)).toEqual({ provider, address, port });
  });

  it('does not match look-alike hosts', () => {
    expect(serverInfo('https://api.openai.com.evil.example/v1', GENERIC_OPENAI_COMPATIBLE).provider).toBe(GENERIC_OPENAI_COMPATIBLE);
    expect(serverInfo('https://notopenrouter.ai/v1', GENERIC_OPENAI_COMPATIBLE).provider).toBe(GENERIC_OPENAI_COMPATIBLE);
  });

  it('names an AzureOpenAI client azure.ai.openai whatever its host', () => {
    expect(serverInfo('https://gateway.corp.example/openai', GENERIC_OPENAI_COMPATIBLE, true).provider).toBe('azure.ai.openai');
  });

  it('keeps the Anthropic provider for any Anthropic base URL, and survives unparsable URLs', () => {
    expect(serverInfo('http://127.0.0.1:9999', 'anthropic')).toEqual({ provider: 'anthropic', address: '127.0.0.1', port: 9999 });
    expect(serverInfo('not a url', GENERIC_OPENAI_COMPATIBLE)).toEqual({ provider: GENERIC_OPENAI_COMPATIBLE, address: undefined, port: undefined });
    expect(serverInfo(undefined, 'anthropic').provider).toBe('anthropic');
  });
});
