import { describe, it } from 'vitest';
import { normalizeAnthropicUsage } from '../../src/usage/index.js';
import { buckets, check, type Case } from './helpers.js';

const cases: Case[] = [
  { name: 'ordinary', raw: { input_tokens: 25, output_tokens: 120 }, usage: buckets(25, 0, 0, 120, 0) },
  {
    name: 'cache read is ADDED to input, not subtracted',
    raw: { input_tokens: 21, cache_read_input_tokens: 1800, cache_creation_input_tokens: 0, output_tokens: 393 },
    usage: buckets(21, 1800, 0, 393, 0),
  },
  {
    name: 'cache write (no split reported) is all 5-minute',
    raw: { input_tokens: 21, cache_creation_input_tokens: 1800, cache_read_input_tokens: 0, output_tokens: 12 },
    usage: buckets(21, 0, 1800, 12, 0),
  },
  {
    name: '5m/1h split: the 1h part is kept inside cache_write',
    raw: {
      input_tokens: 50, cache_read_input_tokens: 100, cache_creation_input_tokens: 1500,
      cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 }, output_tokens: 7,
    },
    usage: buckets(50, 100, 1500, 7, 0, 1000),
  },
  {
    name: 'split of only 5m writes adds no 1h part',
    raw: { input_tokens: 3, cache_creation_input_tokens: 2048, cache_creation: { ephemeral_5m_input_tokens: 2048, ephemeral_1h_input_tokens: 0 }, output_tokens: 1 },
    usage: buckets(3, 0, 2048, 1, 0),
  },
  {
    name: 'split without the total: cache_write is the sum of the split',
    raw: { input_tokens: 3, cache_creation: { ephemeral_5m_input_tokens: 200, ephemeral_1h_input_tokens: 300 }, output_tokens: 1 },
    usage: buckets(3, 0, 500, 1, 0, 300),
  },
  {
    name: 'thinking is inside output_tokens: reasoning stays 0',
    raw: { input_tokens: 40, output_tokens: 3000, service_tier: 'standard', server_tool_use: { web_search_requests: 1 } },
    usage: buckets(40, 0, 0, 3000, 0),
  },
  {
    name: 'null cache fields (streaming message_start) are absent',
    raw: { input_tokens: 9, cache_creation_input_tokens: null, cache_read_input_tokens: null, cache_creation: null, output_tokens: 1 },
    usage: buckets(9, 0, 0, 1, 0),
  },
  {
    name: '1h part above the total is clamped and flagged',
    raw: { input_tokens: 1, cache_creation_input_tokens: 100, cache_creation: { ephemeral_1h_input_tokens: 150 }, output_tokens: 1 },
    usage: buckets(1, 0, 100, 1, 0, 100),
    warnings: [/cache_creation\.ephemeral_1h_input_tokens \(150\) exceeds cache_creation_input_tokens \(100\); clamped to 100/],
  },
  {
    name: 'a split that does not add up is flagged, the total wins',
    raw: { input_tokens: 1, cache_creation_input_tokens: 100, cache_creation: { ephemeral_5m_input_tokens: 30, ephemeral_1h_input_tokens: 60 }, output_tokens: 1 },
    usage: buckets(1, 0, 100, 1, 0, 60),
    warnings: [/split \(5m 30 \+ 1h 60 = 90\) differs from cache_creation_input_tokens \(100\)/],
  },
];

describe('normalizeAnthropicUsage', () => {
  it.each(cases)('$name', (c) => check(normalizeAnthropicUsage, c));
});
