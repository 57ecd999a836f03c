import { describe, expect, it } from 'vitest';
import { normalizeOpenAIChatUsage, normalizeOpenAIResponsesUsage } from '../../src/usage/index.js';
import { buckets, check, type Case } from './helpers.js';

const chat: Case[] = [
  { name: 'ordinary', raw: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 }, usage: buckets(12, 0, 0, 30, 0) },
  {
    name: 'cached prompt tokens are subtracted from input',
    raw: { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 } },
    usage: buckets(86, 1920, 0, 300, 0),
  },
  {
    name: 'reasoning tokens are subtracted from completion',
    raw: { prompt_tokens: 75, completion_tokens: 1186, completion_tokens_details: { reasoning_tokens: 1024, accepted_prediction_tokens: 0 } },
    usage: buckets(75, 0, 0, 162, 1024),
  },
  {
    name: 'cached and reasoning together',
    raw: {
      prompt_tokens: 5000, completion_tokens: 900, total_tokens: 5900,
      prompt_tokens_details: { cached_tokens: 4096 }, completion_tokens_details: { reasoning_tokens: 640 },
    },
    usage: buckets(904, 4096, 0, 260, 640),
  },
  {
    name: 'null details (OpenAI-compatible servers) are absent',
    raw: { prompt_tokens: 9, completion_tokens: 1, prompt_tokens_details: null, completion_tokens_details: null },
    usage: buckets(9, 0, 0, 1, 0),
  },
  { name: 'missing completion_tokens is 0', raw: { prompt_tokens: 8 }, usage: buckets(8, 0, 0, 0, 0) },
  {
    name: 'all cached, nothing generated',
    raw: { prompt_tokens: 1024, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 1024 } },
    usage: buckets(0, 1024, 0, 0, 0),
  },
  {
    name: 'cached above prompt is clamped and flagged',
    raw: { prompt_tokens: 100, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 150 } },
    usage: buckets(0, 100, 0, 5, 0),
    warnings: [/prompt_tokens_details\.cached_tokens \(150\) exceeds prompt_tokens \(100\); clamped to 100/],
  },
  {
    name: 'reasoning above completion is clamped and flagged',
    raw: { prompt_tokens: 10, completion_tokens: 20, completion_tokens_details: { reasoning_tokens: 25 } },
    usage: buckets(10, 0, 0, 0, 20),
    warnings: [/completion_tokens_details\.reasoning_tokens \(25\) exceeds completion_tokens \(20\)/],
  },
  {
    name: 'cached with no prompt_tokens at all is clamped to 0',
    raw: { completion_tokens: 3, prompt_tokens_details: { cached_tokens: 7 } },
    usage: buckets(0, 0, 0, 3, 0),
    warnings: [/cached_tokens \(7\) exceeds prompt_tokens \(absent, 0\)/],
  },
  {
    name: 'a total_tokens that disagrees is flagged, parts win',
    raw: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 16 },
    usage: buckets(10, 0, 0, 5, 0),
    warnings: [/total_tokens \(16\) differs from prompt_tokens \+ completion_tokens \(15\)/],
  },
];

const responses: Case[] = [
  {
    name: 'ordinary',
    raw: { input_tokens: 36, input_tokens_details: { cached_tokens: 0 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 123 },
    usage: buckets(36, 0, 0, 87, 0),
  },
  {
    name: 'cached and reasoning',
    raw: { input_tokens: 3000, input_tokens_details: { cached_tokens: 2048 }, output_tokens: 500, output_tokens_details: { reasoning_tokens: 448 }, total_tokens: 3500 },
    usage: buckets(952, 2048, 0, 52, 448),
  },
  {
    name: 'cached above input is clamped',
    raw: { input_tokens: 10, input_tokens_details: { cached_tokens: 11 }, output_tokens: 1 },
    usage: buckets(0, 10, 0, 1, 0),
    warnings: [/input_tokens_details\.cached_tokens \(11\) exceeds input_tokens \(10\)/],
  },
];

describe('normalizeOpenAIChatUsage', () => {
  it.each(chat)('$name', (c) => check(normalizeOpenAIChatUsage, c));
});

describe('normalizeOpenAIResponsesUsage', () => {
  it.each(responses)('$name', (c) => check(normalizeOpenAIResponsesUsage, c));
  it('does not read the chat field names', () => {
    expect(() => normalizeOpenAIResponsesUsage({ prompt_tokens: 5, completion_tokens: 5 })).toThrow(/no token counts/);
  });
});
