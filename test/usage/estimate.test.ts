import { describe, expect, it } from 'vitest';
import { estimateChatTokens, estimateEncodingForModel, estimateTokens } from '../../src/usage/index.js';

// Counts below were obtained by running js-tiktoken's o200k_base / cl100k_base ranks, not guessed.
describe('estimateTokens', () => {
  it('counts a known string with o200k_base by default', () => {
    expect(estimateTokens('hello world')).toBe(2);
    expect(estimateTokens('Hello, world!')).toBe(4);
  });

  it('is 0 for the empty string', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('', 'gpt-4')).toBe(0);
  });

  it('is deterministic', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
    expect(estimateTokens(text)).toBe(estimateTokens(text));
    expect(estimateTokens(text)).toBe(201); // 20 × 10 tokens, plus the trailing space
  });

  it('uses cl100k_base for older models and o200k_base for newer ones', () => {
    expect(estimateTokens('こんにちは世界', 'gpt-4o')).toBe(2);
    expect(estimateTokens('こんにちは世界', 'gpt-4-turbo')).toBe(4);
    expect(estimateTokens('你好，世界', 'gpt-3.5-turbo')).toBe(6);
    expect(estimateTokens('你好，世界', 'o3-mini')).toBe(3);
  });

  it('counts special-token text as plain text instead of throwing', () => {
    expect(estimateTokens('<|endoftext|> hi')).toBe(8);
  });
});

describe('estimateEncodingForModel', () => {
  it.each([
    [undefined, 'o200k_base'], ['gpt-4o-2024-08-06', 'o200k_base'], ['gpt-4.1-mini', 'o200k_base'], ['gpt-5', 'o200k_base'],
    ['o1', 'o200k_base'], ['o4-mini', 'o200k_base'], ['openai/gpt-4o', 'o200k_base'], ['claude-sonnet-4-5', 'o200k_base'],
    ['gpt-4', 'cl100k_base'], ['gpt-4-0613', 'cl100k_base'], ['gpt-4-turbo', 'cl100k_base'], ['gpt-3.5-turbo', 'cl100k_base'],
    ['gpt-35-turbo', 'cl100k_base'], ['text-embedding-3-small', 'cl100k_base'], ['GPT-4', 'cl100k_base'],
  ])('%s -> %s', (model, encoding) => {
    expect(estimateEncodingForModel(model)).toBe(encoding);
  });
});

describe('estimateChatTokens', () => {
  it('adds 3 per message, the role, the content and 3 for the reply priming', () => {
    // 3 + user(1) + "hello world"(2) + 3 = 9
    expect(estimateChatTokens([{ role: 'user', content: 'hello world' }])).toBe(9);
  });

  it('adds 1 + the name for a named message', () => {
    expect(estimateChatTokens([{ role: 'user', content: 'hello world', name: 'user' }])).toBe(9 + 1 + 1);
  });

  it('counts the text parts of array content and skips images', () => {
    const parts = [{ type: 'text', text: 'hello' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'text', text: ' world' }];
    expect(estimateChatTokens([{ role: 'user', content: parts }])).toBe(9);
  });

  it('sums several messages and handles null content', () => {
    const one = estimateChatTokens([{ role: 'system', content: 'You are a helpful assistant.' }]);
    const two = estimateChatTokens([{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'assistant', content: null }]);
    expect(one).toBe(3 + 1 + 6 + 3);
    expect(two).toBe(one + 3 + 1);
  });

  it('is only the reply priming for no messages', () => {
    expect(estimateChatTokens([])).toBe(3);
  });
});
