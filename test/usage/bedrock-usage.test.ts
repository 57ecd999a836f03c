import { describe, it } from 'vitest';
import { normalizeBedrockConverseUsage } from '../../src/usage/index.js';
import { buckets, check, type Case } from './helpers.js';

const cases: Case[] = [
  { name: 'ordinary', raw: { inputTokens: 30, outputTokens: 628, totalTokens: 658 }, usage: buckets(30, 0, 0, 628, 0) },
  {
    name: 'cache read and write are ADDED to inputTokens',
    raw: { inputTokens: 12, outputTokens: 40, totalTokens: 3052, cacheReadInputTokens: 2000, cacheWriteInputTokens: 1000 },
    usage: buckets(12, 2000, 1000, 40, 0),
  },
  {
    name: 'cacheDetails give the 1h part of the writes',
    raw: {
      inputTokens: 5, outputTokens: 5, cacheWriteInputTokens: 3000,
      cacheDetails: [{ inputTokens: 1000, ttl: '1h' }, { inputTokens: 2000, ttl: '5m' }],
    },
    usage: buckets(5, 0, 3000, 5, 0, 1000),
  },
  {
    name: 'cacheDetails without cacheWriteInputTokens: writes are their sum',
    raw: { inputTokens: 5, outputTokens: 5, cacheDetails: [{ inputTokens: 700, ttl: '5m' }] },
    usage: buckets(5, 0, 700, 5, 0),
  },
  {
    name: '1h details above the write total are clamped and flagged',
    raw: { inputTokens: 1, outputTokens: 1, cacheWriteInputTokens: 10, cacheDetails: [{ inputTokens: 20, ttl: '1h' }] },
    usage: buckets(1, 0, 10, 1, 0, 10),
    warnings: [/cacheDetails 1h inputTokens \(20\) exceeds cacheWriteInputTokens \(10\)/],
  },
];

describe('normalizeBedrockConverseUsage', () => {
  it.each(cases)('$name', (c) => check(normalizeBedrockConverseUsage, c));
});
