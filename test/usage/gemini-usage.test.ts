import { describe, it } from 'vitest';
import { normalizeGeminiUsage } from '../../src/usage/index.js';
import { buckets, check, type Case } from './helpers.js';

const cases: Case[] = [
  { name: 'ordinary', raw: { promptTokenCount: 8, candidatesTokenCount: 12, totalTokenCount: 20 }, usage: buckets(8, 0, 0, 12, 0) },
  {
    name: 'thoughts are reasoning, candidates exclude them',
    raw: { promptTokenCount: 10, candidatesTokenCount: 50, thoughtsTokenCount: 700, totalTokenCount: 760 },
    usage: buckets(10, 0, 0, 50, 700),
  },
  {
    name: 'cached content is subtracted from the prompt',
    raw: { promptTokenCount: 40000, cachedContentTokenCount: 32768, candidatesTokenCount: 100, totalTokenCount: 40100 },
    usage: buckets(7232, 32768, 0, 100, 0),
  },
  {
    name: 'cache and thoughts together',
    raw: { promptTokenCount: 5000, cachedContentTokenCount: 4000, candidatesTokenCount: 200, thoughtsTokenCount: 300, totalTokenCount: 5500 },
    usage: buckets(1000, 4000, 0, 200, 300),
  },
  {
    name: 'tool-use prompt tokens are added to input (real payload, new-api#2935)',
    raw: { promptTokenCount: 151, candidatesTokenCount: 1089, totalTokenCount: 20689, toolUsePromptTokenCount: 18329, thoughtsTokenCount: 1120 },
    usage: buckets(151 + 18329, 0, 0, 1089, 1120),
  },
  {
    name: 'snake_case (Python SDK / Vertex JSON)',
    raw: { prompt_token_count: 300, cached_content_token_count: 100, candidates_token_count: 20, thoughts_token_count: 5, total_token_count: 325 },
    usage: buckets(200, 100, 0, 20, 5),
  },
  {
    name: 'cached above prompt is clamped and flagged',
    raw: { promptTokenCount: 10, cachedContentTokenCount: 12, candidatesTokenCount: 1 },
    usage: buckets(0, 10, 0, 1, 0),
    warnings: [/cachedContentTokenCount \(12\) exceeds promptTokenCount \(10\)/],
  },
  {
    name: 'a totalTokenCount that disagrees is flagged',
    raw: { promptTokenCount: 10, candidatesTokenCount: 10, thoughtsTokenCount: 10, totalTokenCount: 20 },
    usage: buckets(10, 0, 0, 10, 10),
    warnings: [/totalTokenCount \(20\) differs from prompt \+ toolUsePrompt \+ candidates \+ thoughts \(30\)/],
  },
  {
    name: 'streaming chunk with only a prompt count',
    raw: { promptTokenCount: 17, totalTokenCount: 17 },
    usage: buckets(17, 0, 0, 0, 0),
  },
];

describe('normalizeGeminiUsage', () => {
  it.each(cases)('$name', (c) => check(normalizeGeminiUsage, c));
});

describe('normalizeGeminiUsage field spellings', () => {
  it('falls back to snake_case when the camelCase field is null', () => {
    check(normalizeGeminiUsage, {
      name: 'null camel',
      raw: { promptTokenCount: null, prompt_token_count: 5, totalTokenCount: null, total_token_count: 9 },
      usage: buckets(5, 0, 0, 0, 0),
      warnings: [/total_token_count \(9\) differs/],
    });
  });
});
