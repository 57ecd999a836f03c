/**
 * Table-driven pricing cases. Every expected string was worked out by hand from the list prices in
 * data/price-catalog.yaml (USD per million tokens): cost = tokens × rate / 1,000,000, exact.
 */
import { describe, it, expect } from 'vitest';
import { PriceBook } from '../../src/pricing/index.js';
import type { ServiceTier } from '../../src/pricing/index.js';
import type { Usage } from '../../src/usage/usage.js';
import { u, M } from './helpers.js';

interface Case {
  name: string;
  provider?: string;
  model: string;
  at?: string;
  tier?: ServiceTier;
  speed?: 'fast';
  processing?: 'global' | 'regional';
  usage: Usage;
  /** Expected catalog model and total; `cost` lists per-type costs that must match exactly. */
  expectModel: string;
  total: string;
  cost?: Partial<Record<'input' | 'cache_read' | 'cache_write' | 'output' | 'reasoning', string>>;
  contextTier?: string;
  pricePeriod?: 'peak' | 'off_peak';
  adjustments?: string[];
}

const NOW = '2026-11-24T12:00:00Z';

const cases: Case[] = [
  // ── OpenAI ──
  { name: 'gpt-4o input+output', provider: 'openai', model: 'gpt-4o', usage: u(M, 0, 0, M), expectModel: 'gpt-4o', total: '12.5', cost: { input: '2.5', output: '10' } },
  { name: 'gpt-4o cached tokens at the cached rate', provider: 'openai', model: 'gpt-4o', usage: u(1000, 500, 0, 200), expectModel: 'gpt-4o', total: '0.005125', cost: { input: '0.0025', cache_read: '0.000625', output: '0.002' } },
  { name: 'gpt-4o dated snapshot 2024-11-20', provider: 'openai', model: 'gpt-4o-2024-11-20', usage: u(2 * M), expectModel: 'gpt-4o', total: '5' },
  { name: 'openai/gpt-4o prefix', model: 'openai/gpt-4o', usage: u(1), expectModel: 'gpt-4o', total: '0.0000025' },
  { name: 'Azure-hosted gpt-4o', provider: 'azure.ai.openai', model: 'gpt-4o', usage: u(0, 0, 0, 3), expectModel: 'gpt-4o', total: '0.00003' },
  { name: 'gpt-4o batch (cached billed at batch input)', provider: 'openai', model: 'gpt-4o', tier: 'batch', usage: u(M, M, 0, M), expectModel: 'gpt-4o', total: '7.5', cost: { input: '1.25', cache_read: '1.25', output: '5' } },
  { name: 'gpt-4o-mini not swallowed by gpt-4o', provider: 'openai', model: 'gpt-4o-mini', usage: u(M, M, 0, M), expectModel: 'gpt-4o-mini', total: '0.825' },
  { name: 'gpt-4o-mini dated snapshot', provider: 'openai', model: 'gpt-4o-mini-2024-07-18', usage: u(10), expectModel: 'gpt-4o-mini', total: '0.0000015' },
  { name: 'gpt-4o-mini dated prefix rule', provider: 'openai', model: 'gpt-4o-mini-2024-12-01', usage: u(M), expectModel: 'gpt-4o-mini', total: '0.15' },
  { name: 'gpt-4o-mini batch', provider: 'openai', model: 'gpt-4o-mini', tier: 'batch', usage: u(M, 0, 0, M), expectModel: 'gpt-4o-mini', total: '0.375' },
  { name: 'gpt-4.1 odd counts', provider: 'openai', model: 'gpt-4.1', usage: u(123456, 654321, 0, 1000), expectModel: 'gpt-4.1', total: '0.5820725', cost: { input: '0.246912', cache_read: '0.3271605', output: '0.008' } },
  { name: 'gpt-4.1 priority', provider: 'openai', model: 'gpt-4.1', tier: 'priority', usage: u(M, M, 0, M), expectModel: 'gpt-4.1', total: '18.375' },
  { name: 'gpt-4.1-mini snapshot', provider: 'openai', model: 'gpt-4.1-mini-2025-04-14', usage: u(M, M, 0, M), expectModel: 'gpt-4.1-mini', total: '2.1' },
  { name: 'gpt-4.1-nano', provider: 'openai', model: 'gpt-4.1-nano', usage: u(M, M, 0, M), expectModel: 'gpt-4.1-nano', total: '0.525' },
  { name: 'gpt-5 reasoning at the output rate', provider: 'openai', model: 'gpt-5', usage: u(1000, 0, 0, 500, 1500), expectModel: 'gpt-5', total: '0.02125', cost: { input: '0.00125', output: '0.005', reasoning: '0.015' } },
  { name: 'gpt-5 snapshot flex', provider: 'openai', model: 'gpt-5-2025-08-07', tier: 'flex', usage: u(M, M, 0, M, M), expectModel: 'gpt-5', total: '10.6875' },
  { name: 'gpt-5 priority', provider: 'openai', model: 'gpt-5', tier: 'priority', usage: u(M, M, 0, M), expectModel: 'gpt-5', total: '22.75' },
  { name: 'gpt-5 batch', provider: 'openai', model: 'gpt-5', tier: 'batch', usage: u(M, 0, 0, 0, M), expectModel: 'gpt-5', total: '5.625' },
  { name: 'gpt-5-mini all types', provider: 'openai', model: 'gpt-5-mini', usage: u(M, M, 0, M, M), expectModel: 'gpt-5-mini', total: '4.275' },
  { name: 'gpt-5-mini priority', provider: 'openai', model: 'gpt-5-mini', tier: 'priority', usage: u(M), expectModel: 'gpt-5-mini', total: '0.45' },
  { name: 'gpt-5-nano', provider: 'openai', model: 'gpt-5-nano', usage: u(0, M, 0, M), expectModel: 'gpt-5-nano', total: '0.405' },
  { name: 'gpt-5-nano batch cached', provider: 'openai', model: 'gpt-5-nano', tier: 'batch', usage: u(0, M), expectModel: 'gpt-5-nano', total: '0.0025' },
  { name: 'gpt-5-nano one cached token', provider: 'openai', model: 'gpt-5-nano', usage: u(0, 1), expectModel: 'gpt-5-nano', total: '0.000000005' },
  { name: 'gpt-5.1', provider: 'openai', model: 'gpt-5.1', usage: u(M, 0, 0, 0, M), expectModel: 'gpt-5.1', total: '11.25' },
  { name: 'gpt-5.2', provider: 'openai', model: 'gpt-5.2', usage: u(M, M, 0, M), expectModel: 'gpt-5.2', total: '15.925' },
  // OpenAI: "< 272K" input tokens is standard, so 271,999 is standard and 272,000 is already long (issue 20).
  { name: 'gpt-5.4 at 271,999 stays standard', provider: 'openai', model: 'gpt-5.4', usage: u(271999, 0, 0, 1000), expectModel: 'gpt-5.4', total: '0.6949975' },
  { name: 'gpt-5.4 at exactly 272k reprices the request', provider: 'openai', model: 'gpt-5.4', usage: u(272000, 0, 0, 1000), expectModel: 'gpt-5.4', total: '1.3825', cost: { input: '1.36', output: '0.0225' }, contextTier: 'from 272000 input tokens' },
  { name: 'gpt-5.4-mini', provider: 'openai', model: 'gpt-5.4-mini', usage: u(M, 0, 0, M), expectModel: 'gpt-5.4-mini', total: '5.25' },
  { name: 'gpt-5.4-nano', provider: 'openai', model: 'gpt-5.4-nano', usage: u(M, M), expectModel: 'gpt-5.4-nano', total: '0.22' },
  { name: 'gpt-6-sol cache write billed', provider: 'openai', model: 'gpt-6-sol', usage: u(1000, 1000, 1000, 1000), expectModel: 'gpt-6-sol', total: '0.0147', cost: { cache_write: '0.0025' } },
  { name: 'gpt-6-sol above 272k counts cached input', provider: 'openai', model: 'gpt-6-sol', usage: u(200000, 72001, 0, 10), expectModel: 'gpt-6-sol', total: '0.8289504', contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6-luna', provider: 'openai', model: 'gpt-6-luna', usage: u(100000, 0, 0, 100000), expectModel: 'gpt-6-luna', total: '0.06' },
  { name: 'gpt-6-luna 1M prompt is above 272k', provider: 'openai', model: 'gpt-6-luna', usage: u(M, 0, 0, M), expectModel: 'gpt-6-luna', total: '0.95', contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6.1-sol cached', provider: 'openai', model: 'gpt-6.1-sol', usage: u(0, 100000), expectModel: 'gpt-6.1-sol', total: '0.01' },
  { name: 'o3 10^9-token call before the 2025-06-10 cut', provider: 'openai', model: 'o3', at: '2025-06-09T23:59:59Z', usage: u(1e9, 0, 0, 0, 1e9), expectModel: 'o3', total: '50000', cost: { input: '10000', reasoning: '40000' } },
  { name: 'o3 10^9-token call from the cut', provider: 'openai', model: 'o3-2025-04-16', at: '2025-06-10T00:00:00Z', usage: u(1e9, 0, 0, 0, 1e9), expectModel: 'o3', total: '10000' },
  { name: 'o3 flex', provider: 'openai', model: 'o3', tier: 'flex', usage: u(M, M, 0, M), expectModel: 'o3', total: '5.25' },
  { name: 'o4-mini reasoning', provider: 'openai', model: 'o4-mini', usage: u(M, M, 0, 0, M), expectModel: 'o4-mini', total: '5.775' },
  { name: 'o4-mini flex cached', provider: 'openai', model: 'o4-mini', tier: 'flex', usage: u(0, M), expectModel: 'o4-mini', total: '0.1375' },
  { name: 'text-embedding-3-small 10^9 tokens', provider: 'openai', model: 'text-embedding-3-small', usage: u(1e9), expectModel: 'text-embedding-3-small', total: '20' },
  { name: 'text-embedding-3-large batch', provider: 'openai', model: 'text-embedding-3-large', tier: 'batch', usage: u(M), expectModel: 'text-embedding-3-large', total: '0.065' },
  { name: 'float trap 0.1 + 0.2 (gpt-4.1-nano)', provider: 'openai', model: 'gpt-4.1-nano', usage: u(M, 0, 0, 500000), expectModel: 'gpt-4.1-nano', total: '0.3', cost: { input: '0.1', output: '0.2' } },
  { name: 'float trap 0.1 + 0.2 (gpt-5-nano)', provider: 'openai', model: 'gpt-5-nano', usage: u(2 * M, 0, 0, 500000), expectModel: 'gpt-5-nano', total: '0.3' },
  // ── Anthropic ──
  { name: 'claude-3-5-haiku all types (5m write)', provider: 'anthropic', model: 'claude-3-5-haiku-20241022', usage: u(M, M, M, M), expectModel: 'claude-3-5-haiku', total: '5.88', cost: { cache_read: '0.08', cache_write: '1' } },
  { name: 'Bedrock Claude 3.5 Haiku id', provider: 'aws.bedrock', model: 'anthropic.claude-3-5-haiku-20241022-v1:0', usage: u(1000, 0, 0, 1000), expectModel: 'claude-3-5-haiku', total: '0.0048' },
  { name: 'Bedrock cross-region id, 1h write', provider: 'aws.bedrock', model: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', usage: u(0, 0, 1000, 0, 0, 1000), expectModel: 'claude-3-5-haiku', total: '0.0016' },
  { name: 'claude-3-5-haiku mixed 5m and 1h writes', provider: 'anthropic', model: 'claude-3-5-haiku', usage: u(0, 0, 3000, 0, 0, 1000), expectModel: 'claude-3-5-haiku', total: '0.0036', cost: { cache_write: '0.0036' } },
  { name: 'claude-3-7-sonnet', provider: 'anthropic', model: 'claude-3-7-sonnet-20250219', usage: u(M, M, M, M), expectModel: 'claude-3-7-sonnet', total: '22.05' },
  { name: 'Vertex Claude Sonnet 4 @date', provider: 'gcp.vertex_ai', model: 'claude-sonnet-4@20250514', usage: u(100, 0, 0, 100), expectModel: 'claude-sonnet-4', total: '0.0018' },
  { name: 'claude-sonnet-4-5 above 200k (cache reads count)', provider: 'anthropic', model: 'claude-sonnet-4-5-20250929', usage: u(150000, 50001, 0, 1000), expectModel: 'claude-sonnet-4-5', total: '0.9525006', contextTier: 'above 200000 input tokens' },
  { name: 'claude-sonnet-4-5 at exactly 200k', provider: 'anthropic', model: 'claude-sonnet-4-5', usage: u(200000), expectModel: 'claude-sonnet-4-5', total: '0.6' },
  { name: 'claude-sonnet-4-5 batch above 200k', provider: 'anthropic', model: 'claude-sonnet-4-5', tier: 'batch', usage: u(300000, 0, 1000, 1000, 0, 1000), expectModel: 'claude-sonnet-4-5', total: '0.91725', contextTier: 'above 200000 input tokens' },
  { name: 'claude-sonnet-4-5 1h write', provider: 'anthropic', model: 'claude-sonnet-4-5[1m]', usage: u(0, 0, 100000, 0, 0, 100000), expectModel: 'claude-sonnet-4-5', total: '0.6' },
  { name: 'claude-haiku-4-5 half 5m half 1h', provider: 'anthropic', model: 'claude-haiku-4-5-20251001', usage: u(M, M, M, M, 0, 500000), expectModel: 'claude-haiku-4-5', total: '7.725', cost: { cache_write: '1.625' } },
  { name: 'claude-haiku-4-5 batch', provider: 'anthropic', model: 'claude-haiku-4-5', tier: 'batch', usage: u(0, 0, 0, M), expectModel: 'claude-haiku-4-5', total: '2.5' },
  { name: 'claude-opus-4-1 1h write', provider: 'anthropic', model: 'claude-opus-4-1-20250805', usage: u(M, 0, M, 0, 0, M), expectModel: 'claude-opus-4-1', total: '45' },
  { name: 'claude-opus-4 batch 5m write', provider: 'anthropic', model: 'claude-opus-4-20250514', tier: 'batch', usage: u(0, 0, M), expectModel: 'claude-opus-4', total: '9.375' },
  { name: 'claude-opus-4-5', provider: 'anthropic', model: 'claude-opus-4-5', usage: u(M, M, 0, M), expectModel: 'claude-opus-4-5', total: '30.5' },
  { name: 'claude-opus-5 thinking at the output rate', provider: 'anthropic', model: 'claude-opus-5', usage: u(0, 0, 0, 0, M), expectModel: 'claude-opus-5', total: '25' },
  { name: 'claude-opus-5-5 1h write', provider: 'anthropic', model: 'claude-opus-5-5', usage: u(M, 0, M, 0, 0, M), expectModel: 'claude-opus-5-5', total: '12' },
  { name: 'claude-sonnet-5-5 cache read before the 2026-10-07 cut', provider: 'anthropic', model: 'claude-sonnet-5-5', at: '2026-10-06T23:59:59Z', usage: u(0, M), expectModel: 'claude-sonnet-5-5', total: '0.2' },
  { name: 'claude-sonnet-5-5 cache read from the cut', provider: 'anthropic', model: 'claude-sonnet-5-5', at: '2026-10-07T00:00:00Z', usage: u(0, M), expectModel: 'claude-sonnet-5-5', total: '0.1' },
  { name: 'claude-haiku-5-5 at 100k', provider: 'anthropic', model: 'claude-haiku-5-5', usage: u(100000, 0, 0, 1000), expectModel: 'claude-haiku-5-5', total: '0.0105' },
  { name: 'claude-haiku-5-5 above 100k', provider: 'anthropic', model: 'claude-haiku-5-5', usage: u(100001, 0, 0, 1000), expectModel: 'claude-haiku-5-5', total: '0.0525005', contextTier: 'above 100000 input tokens' },
  { name: 'claude-fable-5-1 cache read', provider: 'anthropic', model: 'claude-fable-5-1', usage: u(0, M), expectModel: 'claude-fable-5-1', total: '0.25' },
  { name: 'claude-sonnet-5 batch', provider: 'anthropic', model: 'claude-sonnet-5', tier: 'batch', usage: u(M, 0, 0, M), expectModel: 'claude-sonnet-5', total: '6' },
  // ── Google ──
  { name: 'gemini-2.5-pro at 200k', provider: 'gcp.gemini', model: 'gemini-2.5-pro', usage: u(200000, 0, 0, 1000), expectModel: 'gemini-2.5-pro', total: '0.26' },
  { name: 'gemini-2.5-pro above 200k reprices the whole request', provider: 'gcp.gemini', model: 'gemini-2.5-pro', usage: u(150000, 50001, 0, 1000, 2000), expectModel: 'gemini-2.5-pro', total: '0.43250025', cost: { input: '0.375', cache_read: '0.01250025', output: '0.015', reasoning: '0.03' }, contextTier: 'above 200000 input tokens' },
  { name: 'gemini-2.5-pro batch above 200k', provider: 'gcp.vertex_ai', model: 'gemini-2.5-pro', tier: 'batch', usage: u(300000, 0, 0, 1000), expectModel: 'gemini-2.5-pro', total: '0.3825', contextTier: 'above 200000 input tokens' },
  { name: 'gemini-2.5-flash thinking at output rate', provider: 'gcp.gemini', model: 'gemini-2.5-flash', usage: u(M, M, 0, M, M), expectModel: 'gemini-2.5-flash', total: '5.33' },
  { name: 'models/gemini-2.5-flash path', provider: 'gcp.gemini', model: 'models/gemini-2.5-flash', usage: u(10), expectModel: 'gemini-2.5-flash', total: '0.000003' },
  { name: 'gemini-2.5-flash-lite', provider: 'gcp.gemini', model: 'gemini-2.5-flash-lite', usage: u(M, M, 0, M), expectModel: 'gemini-2.5-flash-lite', total: '0.51' },
  { name: 'gemini-2.5-flash-lite batch', provider: 'gcp.gemini', model: 'gemini-2.5-flash-lite', tier: 'batch', usage: u(M), expectModel: 'gemini-2.5-flash-lite', total: '0.05' },
  // ── Mistral ──
  { name: 'mistral-large-2512', provider: 'mistral_ai', model: 'mistral-large-2512', usage: u(M, 0, 0, M), expectModel: 'mistral-large-2512', total: '2' },
  { name: 'mistral-large-3 alias', provider: 'mistral_ai', model: 'mistral-large-3', usage: u(M, 0, 0, M), expectModel: 'mistral-large-2512', total: '2' },
  { name: 'mistral-large-2411', provider: 'mistral_ai', model: 'mistral-large-2411', usage: u(M, 0, 0, M), expectModel: 'mistral-large-2411', total: '8' },
  { name: 'mistral-medium-2508', provider: 'mistral_ai', model: 'mistral-medium-2508', usage: u(M, 0, 0, M), expectModel: 'mistral-medium-2508', total: '2.4' },
  { name: 'mistral-small cache reads billed as input', provider: 'mistral_ai', model: 'mistral-small-2506', usage: u(0, M), expectModel: 'mistral-small-2506', total: '0.1' },
  { name: 'codestral cached', provider: 'mistral_ai', model: 'codestral-2508', usage: u(0, M), expectModel: 'codestral-2508', total: '0.03' },
  { name: 'magistral-medium dated prefix', provider: 'mistral_ai', model: 'magistral-medium-2509', usage: u(M, 0, 0, 0, M), expectModel: 'magistral-medium', total: '7' },
  // ── DeepSeek ──
  { name: 'deepseek-chat V3 price', provider: 'deepseek', model: 'deepseek-chat', at: '2025-03-01T00:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-chat', total: '1.44' },
  { name: 'deepseek-chat one second before 2025-09-05 16:00', provider: 'deepseek', model: 'deepseek-chat', at: '2025-09-05T15:59:59Z', usage: u(M, M, 0, M), expectModel: 'deepseek-chat', total: '1.44' },
  { name: 'deepseek-chat at 2025-09-05 16:00', provider: 'deepseek', model: 'deepseek-chat', at: '2025-09-05T16:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-chat', total: '2.31' },
  { name: 'deepseek-chat V3.2', provider: 'deepseek', model: 'deepseek-chat', at: '2025-10-01T00:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-chat', total: '0.728' },
  { name: 'deepseek-reasoner R1 price, CoT at output rate', provider: 'deepseek', model: 'deepseek-reasoner', at: '2025-03-01T00:00:00Z', usage: u(M, 0, 0, M, M), expectModel: 'deepseek-reasoner', total: '4.93' },
  { name: 'deepseek-reasoner 10^9 reasoning tokens', provider: 'deepseek', model: 'deepseek-reasoner', at: '2026-01-15T00:00:00Z', usage: u(0, 0, 0, 0, 1e9), expectModel: 'deepseek-reasoner', total: '420' },
  { name: 'deepseek cache write billed as input (miss)', provider: 'deepseek', model: 'deepseek-chat', at: '2026-01-15T00:00:00Z', usage: u(0, 0, M), expectModel: 'deepseek-chat', total: '0.28' },
  // ── Fixes of issue 20, by hand from the sources' rates ──
  // deepseek-chat / -reasoner served by V4 Flash from 2026-04-24: 0.14 miss, 0.0028 hit, 0.28 output.
  { name: 'deepseek-chat the day before V4 (V3.2 price)', provider: 'deepseek', model: 'deepseek-chat', at: '2026-04-23T23:59:59Z', usage: u(M, M, 0, M), expectModel: 'deepseek-chat', total: '0.728' },
  { name: 'deepseek-chat at V4 Flash price from 2026-04-24', provider: 'deepseek', model: 'deepseek-chat', at: '2026-04-24T00:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-chat', total: '0.4228', cost: { input: '0.14', cache_read: '0.0028', output: '0.28' } },
  { name: 'deepseek-reasoner at V4 Flash price, CoT at output rate', provider: 'deepseek', model: 'deepseek-reasoner', at: '2026-07-24T15:58:59Z', usage: u(1000, 2000, 0, 500, 1500), expectModel: 'deepseek-reasoner', total: '0.0007056', cost: { input: '0.00014', cache_read: '0.0000056', output: '0.00014', reasoning: '0.00042' } },
  // Mistral Large 3 / Medium 3.1 cached tokens at 10% of input.
  { name: 'mistral-large-2512 cached at 10% of input', provider: 'mistral_ai', model: 'mistral-large-2512', usage: u(M, M, 0, M), expectModel: 'mistral-large-2512', total: '2.05', cost: { cache_read: '0.05' } },
  { name: 'mistral-medium-2508 cached at 10% of input', provider: 'mistral_ai', model: 'mistral-medium-3.1', usage: u(0, 500000), expectModel: 'mistral-medium-2508', total: '0.02' },
  // Claude Opus 5.5 from its 2026-09-22 release: $4 in, $20 out.
  { name: 'claude-opus-5-5 on its release day', provider: 'anthropic', model: 'claude-opus-5-5', at: '2026-09-22T00:00:00Z', usage: u(M, 0, 0, M), expectModel: 'claude-opus-5-5', total: '24' },
  // Priority rates from openai.com/api-priority-processing.
  { name: 'gpt-4o priority', provider: 'openai', model: 'gpt-4o-2024-08-06', tier: 'priority', usage: u(M, M, 0, M), expectModel: 'gpt-4o', total: '23.375', cost: { input: '4.25', cache_read: '2.125', output: '17' } },
  { name: 'gpt-4o-mini priority', provider: 'openai', model: 'gpt-4o-mini', tier: 'priority', usage: u(M, M, 0, M), expectModel: 'gpt-4o-mini', total: '1.375' },
  { name: 'o3 priority', provider: 'openai', model: 'o3', tier: 'priority', usage: u(M, M, 0, 0, M), expectModel: 'o3', total: '18.375' },
  { name: 'o4-mini priority', provider: 'openai', model: 'o4-mini', tier: 'priority', usage: u(M, M, 0, M), expectModel: 'o4-mini', total: '10.5' },
  // GPT-5.4 family batch / flex at 50% of standard.
  { name: 'gpt-5.4 batch', provider: 'openai', model: 'gpt-5.4', tier: 'batch', usage: u(100000, 100000, 0, 100000), expectModel: 'gpt-5.4', total: '0.8875' },
  { name: 'gpt-5.4 flex', provider: 'openai', model: 'gpt-5.4', tier: 'flex', usage: u(100000, 0, 0, 10000), expectModel: 'gpt-5.4', total: '0.2' },
  { name: 'gpt-5.4-mini batch', provider: 'openai', model: 'gpt-5.4-mini', tier: 'batch', usage: u(M, M, 0, M), expectModel: 'gpt-5.4-mini', total: '2.6625' },
  { name: 'gpt-5.4-nano batch', provider: 'openai', model: 'gpt-5.4-nano', tier: 'batch', usage: u(M, M, 0, M), expectModel: 'gpt-5.4-nano', total: '0.735' },
  // GPT-6 Sol / Luna / 6.1 Sol: batch and flex 50%, priority (Fast mode) 2x, long context included.
  { name: 'gpt-6-sol batch with cache write', provider: 'openai', model: 'gpt-6-sol', tier: 'batch', usage: u(10000, 10000, 10000, 10000), expectModel: 'gpt-6-sol', total: '0.0735', cost: { cache_write: '0.0125' } },
  { name: 'gpt-6-sol priority above 272k', provider: 'openai', model: 'gpt-6-sol', tier: 'priority', usage: u(300000, 0, 0, 1000), expectModel: 'gpt-6-sol', total: '2.43', cost: { input: '2.4', output: '0.03' }, contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6-luna flex', provider: 'openai', model: 'gpt-6-luna', tier: 'flex', usage: u(100000, 0, 0, 100000), expectModel: 'gpt-6-luna', total: '0.03' },
  { name: 'gpt-6-luna flex 1M prompt is long context', provider: 'openai', model: 'gpt-6-luna', tier: 'flex', usage: u(M, 0, 0, M), expectModel: 'gpt-6-luna', total: '0.475', contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6.1-sol priority cached', provider: 'openai', model: 'gpt-6.1-sol', tier: 'priority', usage: u(0, 100000), expectModel: 'gpt-6.1-sol', total: '0.02' },
  // Claude Fable 5.1 and Haiku 5.5 batch: 50% of every rate.
  { name: 'claude-fable-5-1 batch', provider: 'anthropic', model: 'claude-fable-5-1', tier: 'batch', usage: u(M, M, M, M), expectModel: 'claude-fable-5-1', total: '36.375' },
  { name: 'claude-haiku-5-5 batch at 100k', provider: 'anthropic', model: 'claude-haiku-5-5', tier: 'batch', usage: u(100000, 0, 0, 1000), expectModel: 'claude-haiku-5-5', total: '0.00525' },
  { name: 'claude-haiku-5-5 batch above 100k', provider: 'anthropic', model: 'claude-haiku-5-5', tier: 'batch', usage: u(100001, 0, 0, 1000), expectModel: 'claude-haiku-5-5', total: '0.02625025', contextTier: 'above 100000 input tokens' },
  // ── Models added for issue 20, by hand from the sources' rates (USD per Mtok) ──
  // gpt-5.4-pro 30 / 180, from 272k 60 / 270; no cache discount listed, so cached input bills at 30.
  { name: 'gpt-5.4-pro', provider: 'openai', model: 'gpt-5.4-pro-2026-03-05', usage: u(100000, 0, 0, 10000), expectModel: 'gpt-5.4-pro', total: '4.8' },
  { name: 'gpt-5.4-pro from 272k', provider: 'openai', model: 'gpt-5.4-pro', usage: u(272000, 0, 0, 1000), expectModel: 'gpt-5.4-pro', total: '16.59', cost: { input: '16.32', output: '0.27' }, contextTier: 'from 272000 input tokens' },
  // gpt-5.5 5 / 0.5 / 30; from 272k 10 / 1 / 45; batch 2.5 / 0.25 / 15 (long 5 / 0.5 / 22.5); priority 12.5 / 1.25 / 75.
  { name: 'gpt-5.5', provider: 'openai', model: 'gpt-5.5', usage: u(100000, 100000, 0, 10000, 10000), expectModel: 'gpt-5.5', total: '1.15', cost: { input: '0.5', cache_read: '0.05', output: '0.3', reasoning: '0.3' } },
  { name: 'gpt-5.5 from 272k (cached input counts)', provider: 'openai', model: 'gpt-5.5-2026-04-23', usage: u(200000, 72000, 0, 1000), expectModel: 'gpt-5.5', total: '2.117', cost: { input: '2', cache_read: '0.072', output: '0.045' }, contextTier: 'from 272000 input tokens' },
  { name: 'gpt-5.5 batch long context', provider: 'openai', model: 'gpt-5.5', tier: 'batch', usage: u(300000, 0, 0, 2000), expectModel: 'gpt-5.5', total: '1.545', contextTier: 'from 272000 input tokens' },
  { name: 'gpt-5.5 priority', provider: 'openai', model: 'gpt-5.5', tier: 'priority', usage: u(10000, 10000, 0, 1000), expectModel: 'gpt-5.5', total: '0.2125', cost: { input: '0.125', cache_read: '0.0125', output: '0.075' } },
  { name: 'gpt-5.5-pro', provider: 'openai', model: 'gpt-5.5-pro', usage: u(10000, 0, 0, 1000), expectModel: 'gpt-5.5-pro', total: '0.48' },
  // gpt-5.6-sol 5 / 0.5 / 6.25 write / 30 from 2026-07-09; 4 / 0.4 / 5 / 20 from 2026-08-21.
  { name: 'gpt-5.6 alias = Sol at launch price, cache write at 1.25x input', provider: 'openai', model: 'gpt-5.6', at: '2026-08-20T23:59:59Z', usage: u(10000, 10000, 10000, 1000), expectModel: 'gpt-5.6-sol', total: '0.1475', cost: { input: '0.05', cache_read: '0.005', cache_write: '0.0625', output: '0.03' } },
  { name: 'gpt-5.6-sol from the 2026-06-26 announcement (limited preview at list price)', provider: 'openai', model: 'gpt-5.6-sol', at: '2026-06-26T00:00:00Z', usage: u(100000), expectModel: 'gpt-5.6-sol', total: '0.5' },
  { name: 'gpt-5.6-sol after the 2026-08-21 cut', provider: 'openai', model: 'gpt-5.6-sol-2026-07-09', at: '2026-08-21T00:00:00Z', usage: u(10000, 10000, 10000, 1000), expectModel: 'gpt-5.6-sol', total: '0.114' },
  { name: 'gpt-5.6-sol from 272k after the cut', provider: 'openai', model: 'gpt-5.6-sol', usage: u(272000, 0, 0, 1000), expectModel: 'gpt-5.6-sol', total: '2.206', contextTier: 'from 272000 input tokens' },
  // gpt-5.6-terra 2.5 / 0.25 / 3.125 / 15, from 2026-07-30 2 / 0.2 / 2.5 / 12.
  { name: 'gpt-5.6-terra before the 2026-07-30 cut', provider: 'openai', model: 'gpt-5.6-terra', at: '2026-07-29T12:00:00Z', usage: u(M, 0, 0, M), expectModel: 'gpt-5.6-terra', total: '27.5', contextTier: 'from 272000 input tokens' },
  { name: 'gpt-5.6-terra after the cut', provider: 'openai', model: 'gpt-5.6-terra', at: '2026-07-30T00:00:00Z', usage: u(100000, 0, 0, 100000), expectModel: 'gpt-5.6-terra', total: '1.4' },
  // gpt-5.6-luna 1 / 0.1 / 1.25 / 6, from 2026-07-30 0.2 / 0.02 / 0.25 / 1.2.
  { name: 'gpt-5.6-luna at launch', provider: 'openai', model: 'gpt-5.6-luna', at: '2026-07-10T00:00:00Z', usage: u(100000, 0, 0, 100000), expectModel: 'gpt-5.6-luna', total: '0.7' },
  { name: 'gpt-5.6-luna after the -80% cut', provider: 'openai', model: 'gpt-5.6-luna', usage: u(100000, 0, 0, 100000), expectModel: 'gpt-5.6-luna', total: '0.14' },
  // gpt-6-astra 10 / 1 / 12.5 / 50, from 272k 20 / 2 / 25 / 75.
  { name: 'gpt-6-astra', provider: 'openai', model: 'gpt-6-astra', usage: u(10000, 10000, 10000, 1000), expectModel: 'gpt-6-astra', total: '0.285' },
  { name: 'gpt-6-astra from 272k', provider: 'openai', model: 'gpt-6-astra-2026-10-01', usage: u(272000, 0, 0, 1000), expectModel: 'gpt-6-astra', total: '5.515', contextTier: 'from 272000 input tokens' },
  // Claude Opus 4.6 / Sonnet 4.6: above 200k at 2x input, 1.5x output until 2026-03-13, flat afterwards.
  { name: 'claude-opus-4-6 above 200k before 2026-03-13', provider: 'anthropic', model: 'claude-opus-4-6', at: '2026-03-12T00:00:00Z', usage: u(200001, 0, 0, 1000), expectModel: 'claude-opus-4-6', total: '2.03751', contextTier: 'above 200000 input tokens' },
  { name: 'claude-opus-4-6 above 200k from 2026-03-13 (flat)', provider: 'anthropic', model: 'claude-opus-4-6', at: '2026-03-13T00:00:00Z', usage: u(200001, 0, 0, 1000), expectModel: 'claude-opus-4-6', total: '1.025005' },
  { name: 'claude-sonnet-4-6 above 200k before 2026-03-13, 1h write', provider: 'anthropic', model: 'claude-sonnet-4-6', at: '2026-02-17T00:00:00Z', usage: u(150000, 0, 60000, 1000, 0, 60000), expectModel: 'claude-sonnet-4-6', total: '1.6425', cost: { input: '0.9', cache_write: '0.72', output: '0.0225' }, contextTier: 'above 200000 input tokens' },
  { name: 'claude-sonnet-4-6 batch', provider: 'anthropic', model: 'claude-sonnet-4-6', tier: 'batch', usage: u(M, M, M, M), expectModel: 'claude-sonnet-4-6', total: '11.025' },
  { name: 'claude-opus-4-7', provider: 'anthropic', model: 'claude-opus-4-7', usage: u(M, M, M, M, 0, M), expectModel: 'claude-opus-4-7', total: '40.5' },
  { name: 'claude-opus-4-8 batch', provider: 'anthropic', model: 'claude-opus-4-8', tier: 'batch', usage: u(M, 0, 0, M), expectModel: 'claude-opus-4-8', total: '15' },
  { name: 'claude-fable-5 cache read at $1', provider: 'anthropic', model: 'claude-fable-5', usage: u(0, M, 0, 0, M), expectModel: 'claude-fable-5', total: '51' },
  { name: 'claude-mythos-5', provider: 'anthropic', model: 'claude-mythos-5', at: '2026-12-03T00:00:00Z', usage: u(1000, 0, 1000, 1000), expectModel: 'claude-mythos-5', total: '0.0725' },
  // Seen on provider pages, catalogued 2026-12-03: Mythos 5.1 at Fable 5.1's rates ($10 / $0.25 hit / $12.50 5m / $20 1h / $50).
  { name: 'claude-mythos-5-1 cache hit $0.25, 1h write $20', provider: 'anthropic', model: 'claude-mythos-5-1', usage: u(M, M, M, M, 0, 400000), expectModel: 'claude-mythos-5-1', total: '75.75', cost: { input: '10', cache_read: '0.25', cache_write: '15.5', output: '50' } },
  { name: 'claude-mythos-5-1 on Bedrock, regional +10%', provider: 'aws.bedrock', model: 'anthropic.claude-mythos-5-1', processing: 'regional', usage: u(1000, 0, 0, 1000), expectModel: 'claude-mythos-5-1', total: '0.066', adjustments: ['regional processing x1.1'] },
  // GPT-6.1 Terra ($1 / $0.05 / $1.25 write / $5; above 272K 2x input and cache, 1.5x output) and GPT-6.2 Sol ($2 / $0.10 / $2.50 / $10).
  { name: 'gpt-6.1-terra', provider: 'openai', model: 'gpt-6.1-terra', usage: u(50000, 50000, 50000, 100000), expectModel: 'gpt-6.1-terra', total: '0.615', cost: { input: '0.05', cache_read: '0.0025', cache_write: '0.0625', output: '0.5' } },
  { name: 'gpt-6.1-terra at 272,000 is still standard', provider: 'openai', model: 'gpt-6.1-terra', usage: u(272000, 0, 0, 1000), expectModel: 'gpt-6.1-terra', total: '0.277' },
  { name: 'gpt-6.1-terra above 272K reprices the request', provider: 'openai', model: 'gpt-6.1-terra', usage: u(272001, 0, 0, 1000), expectModel: 'gpt-6.1-terra', total: '0.551502', contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6.1-terra flex 50%', provider: 'openai', model: 'gpt-6.1-terra', tier: 'flex', usage: u(100000, 100000, 0, M), expectModel: 'gpt-6.1-terra', total: '2.5525' },
  { name: 'gpt-6.1-terra priority (Fast) above 272K', provider: 'openai', model: 'gpt-6.1-terra', tier: 'priority', usage: u(300000, 0, 0, M), expectModel: 'gpt-6.1-terra', total: '16.2', contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6.1-terra regional +10%', provider: 'openai', model: 'gpt-6.1-terra-2026-10-26', processing: 'regional', usage: u(100000, 0, 0, M), expectModel: 'gpt-6.1-terra', total: '5.61', adjustments: ['regional processing x1.1'] },
  { name: 'gpt-6.2-sol', provider: 'openai', model: 'gpt-6.2-sol', usage: u(50000, 50000, 50000, M, M), expectModel: 'gpt-6.2-sol', total: '20.23', cost: { input: '0.1', cache_read: '0.005', cache_write: '0.125', output: '10', reasoning: '10' } },
  { name: 'gpt-6.2-sol batch above 272K', provider: 'openai', model: 'gpt-6.2-sol', tier: 'batch', usage: u(300000, 0, 0, M), expectModel: 'gpt-6.2-sol', total: '8.1', contextTier: 'above 272000 input tokens' },
  { name: 'gpt-6.2-sol priority (Fast) 2x', provider: 'openai', model: 'openai/gpt-6.2-sol', tier: 'priority', usage: u(100000, 0, 0, M), expectModel: 'gpt-6.2-sol', total: '20.4' },
  // Gemini 3.x.
  { name: 'gemini-3-pro-preview at 200k', provider: 'gcp.gemini', model: 'gemini-3-pro-preview', usage: u(200000, 0, 0, 1000), expectModel: 'gemini-3-pro-preview', total: '0.412' },
  { name: 'gemini-3.1-pro-preview above 200k, thinking at the output rate', provider: 'gcp.vertex_ai', model: 'gemini-3.1-pro-preview', usage: u(150000, 50001, 0, 1000, 1000), expectModel: 'gemini-3.1-pro-preview', total: '0.6560004', contextTier: 'above 200000 input tokens' },
  { name: 'gemini-3-flash-preview', provider: 'gcp.gemini', model: 'gemini-3-flash-preview', usage: u(M, M, 0, M), expectModel: 'gemini-3-flash-preview', total: '3.55' },
  { name: 'gemini-3.1-flash-lite preview id', provider: 'gcp.gemini', model: 'gemini-3.1-flash-lite-preview-09-2026', usage: u(M, 0, 0, M), expectModel: 'gemini-3.1-flash-lite', total: '1.75' },
  { name: 'gemini-3.5-flash', provider: 'gcp.gemini', model: 'gemini-3.5-flash', usage: u(M, M, 0, M), expectModel: 'gemini-3.5-flash', total: '10.65' },
  { name: 'gemini-3.5-flash-lite', provider: 'gcp.gemini', model: 'gemini-3.5-flash-lite', usage: u(M, M, 0, M), expectModel: 'gemini-3.5-flash-lite', total: '2.83' },
  { name: 'gemini-3.6-flash introductory rate on 2026-12-31', provider: 'gcp.gemini', model: 'gemini-3.6-flash', at: '2026-12-31T23:59:59Z', usage: u(M, M, 0, M), expectModel: 'gemini-3.6-flash', total: '4.575' },
  { name: 'gemini-3.6-flash announced rate from 2027-01-01', provider: 'gcp.gemini', model: 'gemini-3.6-flash', at: '2027-01-01T00:00:00Z', usage: u(M, M, 0, M), expectModel: 'gemini-3.6-flash', total: '9.15' },
  // Gemini 3.x service tiers: batch / flex 50% of input and output (cached input at the batch input rate),
  // priority 1.8x on 3.7 / 3.8 Flash.
  { name: 'gemini-3-pro-preview batch at 200k', provider: 'gcp.gemini', model: 'gemini-3-pro-preview', tier: 'batch', usage: u(200000, 0, 0, 1000), expectModel: 'gemini-3-pro-preview', total: '0.206' },
  { name: 'gemini-3.1-pro-preview batch above 200k', provider: 'gcp.gemini', model: 'gemini-3.1-pro-preview', tier: 'batch', usage: u(300000, 0, 0, 1000), expectModel: 'gemini-3.1-pro-preview', total: '0.609', contextTier: 'above 200000 input tokens' },
  { name: 'gemini-3-flash-preview batch, cached at the batch input rate', provider: 'gcp.gemini', model: 'gemini-3-flash-preview', tier: 'batch', usage: u(M, M, 0, M), expectModel: 'gemini-3-flash-preview', total: '2' },
  { name: 'gemini-3.5-flash flex', provider: 'gcp.gemini', model: 'gemini-3.5-flash', tier: 'flex', usage: u(M, 0, 0, M), expectModel: 'gemini-3.5-flash', total: '5.25' },
  { name: 'gemini-3.7-flash priority 1.8x', provider: 'gcp.gemini', model: 'gemini-3.7-flash', tier: 'priority', usage: u(M, M, 0, M), expectModel: 'gemini-3.7-flash', total: '8.235' },
  { name: 'gemini-3.8-flash priority from 2027 (1.8x the new rate)', provider: 'gcp.gemini', model: 'gemini-3.8-flash', tier: 'priority', at: '2027-01-01T00:00:00Z', usage: u(M, M, 0, M), expectModel: 'gemini-3.8-flash', total: '16.47' },
  { name: 'gemini-3.7-flash', provider: 'gcp.gemini', model: 'gemini-3.7-flash', usage: u(0, 0, 0, M), expectModel: 'gemini-3.7-flash', total: '3.75' },
  { name: 'gemini-3.8-flash from 2027', provider: 'gcp.gemini', model: 'gemini-3.8-flash-preview-01', at: '2027-02-01T00:00:00Z', usage: u(M), expectModel: 'gemini-3.8-flash', total: '1.5' },
  // Mistral.
  { name: 'mistral-medium-3.5', provider: 'mistral_ai', model: 'mistral-medium-3.5', usage: u(M, M, 0, M), expectModel: 'mistral-medium-3.5', total: '9.15' },
  { name: 'mistral-small-2603', provider: 'mistral_ai', model: 'mistral-small-2603', usage: u(M, M, 0, M), expectModel: 'mistral-small-2603', total: '0.765' },
  // xAI: "< 200k" is standard, so a 200,000-token prompt is long context.
  { name: 'grok-4.20 at 199,999', provider: 'x_ai', model: 'grok-4.20', usage: u(199999, 0, 0, 1000), expectModel: 'grok-4.20', total: '0.25249875' },
  { name: 'grok-4.20 from 200k', provider: 'x_ai', model: 'grok-4.20', usage: u(200000, 0, 0, 1000), expectModel: 'grok-4.20', total: '0.505', contextTier: 'from 200000 input tokens' },
  { name: 'grok-4.3 dated id', provider: 'x_ai', model: 'grok-4.3-20260901', usage: u(100000, 50000, 0, 10000), expectModel: 'grok-4.3', total: '0.16' },
  { name: 'grok-4.5 cache read 0.30', provider: 'x_ai', model: 'xai/grok-4.5', usage: u(0, 100000), expectModel: 'grok-4.5', total: '0.03' },
  { name: 'grok-4.6 from 200k (cache counts)', provider: 'x_ai', model: 'grok-4.6', usage: u(100000, 100000, 0, 1000), expectModel: 'grok-4.6', total: '0.512', contextTier: 'from 200000 input tokens' },
  { name: 'grok-code-fast-1', provider: 'x_ai', model: 'grok-code-fast-1', usage: u(M, M, 0, M), expectModel: 'grok-code-fast-1', total: '1.72' },
  // DeepSeek V4: flat at launch; peak / off-peak from 2026-08-16 16:00 UTC (peak 01:00-04:00, 06:00-10:00 UTC);
  // weekends off-peak from 2026-08-23; V4.1 Flash prices from 2026-09-10 04:00 (Pro from 2026-09-14 04:00).
  { name: 'deepseek-v4-flash flat launch price', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-05-01T02:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-flash', total: '0.4228' },
  { name: 'deepseek-v4-flash off-peak at 16:00 on 2026-08-16', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-08-16T16:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-flash', total: '0.887', pricePeriod: 'off_peak' },
  { name: 'deepseek-v4-flash peak 01:00 on a Saturday before the weekend rule', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-08-22T01:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-flash', total: '1.774', cost: { input: '0.44', cache_read: '0.014', output: '1.32' }, pricePeriod: 'peak' },
  { name: 'deepseek-v4-flash 03:59 on a weekday is peak', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-09-01T03:59:59Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-flash', total: '1.774', pricePeriod: 'peak' },
  { name: 'deepseek-v4-flash 04:00 on a weekday is off-peak', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-09-01T04:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-flash', total: '0.887', pricePeriod: 'off_peak' },
  { name: 'deepseek-v4-flash 09:30 on a Saturday is off-peak (weekend rule)', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-09-05T09:30:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-flash', total: '0.887', pricePeriod: 'off_peak' },
  { name: 'deepseek-v4-flash billed as V4.1 Flash from 2026-09-10 04:00, peak 06:00 Thursday', provider: 'deepseek', model: 'deepseek-v4-flash', at: '2026-09-10T06:00:00Z', usage: u(M, M, 0, M, M), expectModel: 'deepseek-v4-flash', total: '2.706', cost: { input: '0.3', cache_read: '0.006', output: '1.2', reasoning: '1.2' }, pricePeriod: 'peak' },
  { name: 'deepseek-flash off-peak', provider: 'deepseek', model: 'deepseek-flash', usage: u(M, M, 0, M), expectModel: 'deepseek-flash', total: '0.753', pricePeriod: 'off_peak' },
  { name: 'deepseek-v4-pro flat launch price', provider: 'deepseek', model: 'deepseek-v4-pro', at: '2026-06-01T00:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-pro', total: '1.308625' },
  { name: 'deepseek-v4-pro peak Monday 07:00', provider: 'deepseek', model: 'deepseek-v4-pro', at: '2026-08-24T07:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-pro', total: '5.324', pricePeriod: 'peak' },
  { name: 'deepseek-v4-pro off-peak Monday 10:00', provider: 'deepseek', model: 'deepseek-v4-pro', at: '2026-08-24T10:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-pro', total: '2.662', pricePeriod: 'off_peak' },
  { name: 'deepseek-v4-pro billed at Flash price from 2026-09-14 04:00 (peak 09:00)', provider: 'deepseek', model: 'deepseek-v4-pro', at: '2026-09-14T09:00:00Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-pro', total: '1.506', pricePeriod: 'peak' },
  { name: 'deepseek-v4-pro one second before the re-route (V4 Pro peak)', provider: 'deepseek', model: 'deepseek-v4-pro', at: '2026-09-14T03:59:59Z', usage: u(M, M, 0, M), expectModel: 'deepseek-v4-pro', total: '5.324', pricePeriod: 'peak' },
  // Anthropic fast mode: a multiplier on every rate, long context and cache rates included (Opus 4.6 6x,
  // Opus 4.8 / 5 / 5.5 2x); removed for Opus 4.8 from 2026-11-30.
  { name: 'claude-opus-4-6 fast mode 6x', provider: 'anthropic', model: 'claude-opus-4-6', speed: 'fast', usage: u(M, M, M, M, 0, M), expectModel: 'claude-opus-4-6', total: '243', cost: { input: '30', cache_read: '3', cache_write: '60', output: '150' }, adjustments: ['fast mode x6'] },
  { name: 'claude-opus-4-6 fast mode above 200k before 2026-03-13 (6x the long-context rate)', provider: 'anthropic', model: 'claude-opus-4-6', at: '2026-03-01T00:00:00Z', speed: 'fast', usage: u(200001, 0, 0, 1000), expectModel: 'claude-opus-4-6', total: '12.22506', contextTier: 'above 200000 input tokens', adjustments: ['fast mode x6'] },
  { name: 'claude-opus-4-8 fast mode 2x before its removal', provider: 'anthropic', model: 'claude-opus-4-8', at: '2026-11-29T23:59:59Z', speed: 'fast', usage: u(M, 0, 0, M), expectModel: 'claude-opus-4-8', total: '60', adjustments: ['fast mode x2'] },
  { name: 'claude-opus-5-5 fast mode: $8 / $40, cache hits $0.40', provider: 'anthropic', model: 'claude-opus-5-5', speed: 'fast', usage: u(M, M, 0, M), expectModel: 'claude-opus-5-5', total: '48.4', cost: { input: '8', cache_read: '0.4', output: '40' }, adjustments: ['fast mode x2'] },
  // Regional / data-residency premiums: +10% on every rate.
  { name: 'gpt-5.5 on a data-residency endpoint (+10%)', provider: 'openai', model: 'gpt-5.5', processing: 'regional', usage: u(100000, 100000, 0, 100000), expectModel: 'gpt-5.5', total: '3.905', cost: { input: '0.55', cache_read: '0.055', output: '3.3' }, adjustments: ['regional processing x1.1'] },
  { name: 'gpt-5.4-nano regional', provider: 'openai', model: 'gpt-5.4-nano', processing: 'regional', usage: u(100000, 0, 0, 100000), expectModel: 'gpt-5.4-nano', total: '0.1595', adjustments: ['regional processing x1.1'] },
  { name: 'gpt-4o regional: no uplift (released before 2026-03-05)', provider: 'openai', model: 'gpt-4o', processing: 'regional', usage: u(M, 0, 0, M), expectModel: 'gpt-4o', total: '12.5' },
  { name: 'gpt-5.5 global: no uplift', provider: 'openai', model: 'gpt-5.5', processing: 'global', usage: u(10000, 0, 0, 1000), expectModel: 'gpt-5.5', total: '0.08' },
  { name: 'Bedrock geo profile Sonnet 4.5 (+10%), 1h write', provider: 'aws.bedrock', model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', processing: 'regional', usage: u(10000, 10000, 10000, 10000, 0, 10000), expectModel: 'claude-sonnet-4-5', total: '0.2673', cost: { input: '0.033', cache_read: '0.0033', cache_write: '0.066', output: '0.165' }, adjustments: ['regional processing x1.1'] },
  { name: 'Bedrock Claude 3.5 Haiku regional: no premium before the 4.5 models', provider: 'aws.bedrock', model: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', processing: 'regional', usage: u(M, 0, 0, M), expectModel: 'claude-3-5-haiku', total: '4.8' },
  { name: 'claude-opus-4-6 inference_geo us, fast mode: 6 x 1.1', provider: 'anthropic', model: 'claude-opus-4-6', speed: 'fast', processing: 'regional', usage: u(M, 0, 0, M), expectModel: 'claude-opus-4-6', total: '198', cost: { input: '33', output: '165' }, adjustments: ['fast mode x6', 'regional processing x1.1'] },
  { name: 'claude-haiku-5-5 regional batch above 100k', provider: 'anthropic', model: 'claude-haiku-5-5', tier: 'batch', processing: 'regional', usage: u(100001, 0, 0, 1000), expectModel: 'claude-haiku-5-5', total: '0.028875275', contextTier: 'above 100000 input tokens', adjustments: ['regional processing x1.1'] },
  // Modality rates: the audio part of uncached input, the audio / image parts of output, each at its own rate;
  // the rest at the text rates. Costs stay in the five types (input, output, ...).
  { name: 'gemini-2.5-flash audio input at $1.00, text at $0.30', provider: 'gcp.gemini', model: 'gemini-2.5-flash', usage: { ...u(M, 0, 0, 1000), input_audio: 400000 }, expectModel: 'gemini-2.5-flash', total: '0.5825', cost: { input: '0.58', output: '0.0025' } },
  { name: 'gemini-3-flash-preview audio input, cached text', provider: 'gcp.gemini', model: 'gemini-3-flash-preview', usage: { ...u(100000, 100000, 0, 10000), input_audio: 100000 }, expectModel: 'gemini-3-flash-preview', total: '0.135', cost: { input: '0.1', cache_read: '0.005', output: '0.03' } },
  { name: 'gpt-audio: audio in $32 / out $64, text $2.50 / $10', provider: 'openai', model: 'gpt-audio', usage: { ...u(10000, 0, 0, 5000), input_audio: 6000, output_audio: 4000 }, expectModel: 'gpt-audio', total: '0.468', cost: { input: '0.202', output: '0.266' } },
  { name: 'gpt-audio-mini all audio', provider: 'openai', model: 'gpt-audio-mini-2025-10-06', usage: { ...u(M, 0, 0, M), input_audio: M, output_audio: M }, expectModel: 'gpt-audio-mini', total: '30' },
  { name: 'gemini-2.5-flash-image: one 1290-token image at $30 / Mtok, text $2.50', provider: 'gcp.gemini', model: 'gemini-2.5-flash-image', usage: { ...u(1000, 0, 0, 1390), output_image: 1290 }, expectModel: 'gemini-2.5-flash-image', total: '0.03925', cost: { input: '0.0003', output: '0.03895' } },
];

describe('price table (hand-computed from list prices)', () => {
  const book = PriceBook.load();
  it('has at least 60 cases across all providers', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });
  it.each(cases)('$name', (c) => {
    const r = book.price({ provider: c.provider, model: c.model, usage: c.usage, at: new Date(c.at ?? NOW), serviceTier: c.tier, speed: c.speed, processing: c.processing });
    if (!r.priced) throw new Error(`unpriced: ${r.reason}`);
    expect(r.model).toBe(c.expectModel);
    expect(r.totalUsd.toFixed()).toBe(c.total);
    for (const [t, v] of Object.entries(c.cost ?? {})) expect(r.costUsd[t as keyof typeof r.costUsd].toFixed(), t).toBe(v);
    expect(r.contextTier).toBe(c.contextTier);
    expect(r.pricePeriod).toBe(c.pricePeriod);
    expect(r.adjustments).toEqual(c.adjustments);
    expect(r.serviceTier).toBe(c.tier ?? 'standard');
    expect(r.origin).toBe('catalog');
  });
});

describe('unpriced results', () => {
  const book = PriceBook.load();
  const at = new Date(NOW);
  it('an unknown model is unpriced with close names, never 0', () => {
    const r = book.price({ provider: 'openai', model: 'gpt-4o-minii', usage: u(1000), at });
    expect(r.priced).toBe(false);
    if (r.priced) return;
    expect(r.reason).toBe('no price for model gpt-4o-minii');
    expect(r.suggestions[0]).toBe('gpt-4o-mini');
    expect(r.suggestions.length).toBeLessThanOrEqual(3);
  });
  it('gpt-4o-2024-05-13 kept its launch price and is not priced as gpt-4o', () => {
    expect(book.price({ provider: 'openai', model: 'gpt-4o-2024-05-13', usage: u(1), at }).priced).toBe(false);
  });
  it('mistral -latest aliases are not guessed', () => {
    expect(book.price({ provider: 'mistral_ai', model: 'mistral-large-latest', usage: u(1), at }).priced).toBe(false);
  });
  it('a price never applies before its effective_from', () => {
    const r = book.price({ provider: 'gcp.gemini', model: 'gemini-2.5-pro', usage: u(1), at: new Date('2026-04-19T23:59:59Z') });
    expect(r.priced).toBe(false);
    if (!r.priced) expect(r.reason).toContain('earliest effective_from 2026-04-20');
    const opus = book.price({ provider: 'anthropic', model: 'claude-opus-5', usage: u(1), at: new Date('2026-07-23T00:00:00Z') });
    expect(opus.priced).toBe(false);
  });
  it('output tokens on an input-only (embedding) model are unpriced, not free', () => {
    const r = book.price({ provider: 'openai', model: 'text-embedding-3-small', usage: u(10, 0, 0, 1), at });
    expect(r.priced).toBe(false);
  });
  it('a retired model is unpriced with the reason, never charged a stale price (deepseek-chat after 2026-07-24 15:59 UTC)', () => {
    for (const model of ['deepseek-chat', 'deepseek-reasoner']) {
      const r = book.price({ provider: 'deepseek', model, usage: u(1000), at: new Date('2026-07-24T15:59:00Z') });
      expect(r.priced).toBe(false);
      if (!r.priced) expect(r.reason).toBe(`model ${model} was retired by its provider on 2026-07-24T15:59:00Z: calls after that are errors, not billable`);
    }
  });
  it('the entries catalogued 2026-12-03 are unpriced before their release and in tiers their sources do not list', () => {
    const cases: [string, string, ServiceTier | undefined, string][] = [
      ['gpt-6.1-terra', '2026-10-25T23:59:59Z', undefined, 'earliest effective_from 2026-10-26'],
      ['gpt-6.2-sol', '2026-11-16T23:59:59Z', undefined, 'earliest effective_from 2026-11-17'],
      ['gpt-6.2-sol', NOW, 'flex', 'no flex price for model gpt-6.2-sol'],
      ['claude-mythos-5-1', '2026-08-31T23:59:59Z', undefined, 'earliest effective_from 2026-09-01'],
      ['claude-mythos-5-1', NOW, 'batch', 'no batch price for model claude-mythos-5-1'],
    ];
    for (const [model, when, serviceTier, reason] of cases) {
      const r = book.price({ model, usage: u(1000, 0, 0, 1000), at: new Date(when), serviceTier });
      expect(r.priced, `${model} ${when} ${serviceTier ?? ''}`).toBe(false);
      if (!r.priced) expect(r.reason).toContain(reason);
    }
  });
  it('fast mode on a model without a fast-mode price, or outside the standard tier, is unpriced (never the standard price)', () => {
    const cases: [string, string | undefined, ServiceTier | undefined][] = [
      ['claude-sonnet-4-6', undefined, undefined],
      ['claude-opus-4-8', '2026-11-30T00:00:00Z', undefined], // fast mode removed for Opus 4.8
      ['claude-opus-4-7', undefined, undefined],
      ['claude-opus-5', undefined, 'batch'],
    ];
    for (const [model, when, serviceTier] of cases) {
      const r = book.price({ provider: 'anthropic', model, usage: u(10), at: when ? new Date(when) : at, speed: 'fast', serviceTier });
      expect(r.priced, model).toBe(false);
      if (!r.priced) expect(r.reason, model).toMatch(/^no fast-mode price for model /);
    }
  });
  it('modality tokens on an entry without that rate are unpriced, never priced as text', () => {
    const cases: [string, Usage, RegExp][] = [
      ['gpt-5.5', { ...u(1000, 0, 0, 10), input_audio: 10 }, /model gpt-5.5 has no audio input price, and the call reports 10 audio input tokens/],
      ['gemini-2.5-flash', { ...u(1000, 0, 0, 10), output_image: 10 }, /has no image output price/],
      ['gpt-audio-mini', { ...u(1000, 0, 0, 10), output_image: 1 }, /has no image output price/],
      ['claude-opus-4-6', { ...u(1000, 0, 0, 10), output_audio: 5 }, /has no audio output price/],
    ];
    for (const [model, usage, reason] of cases) {
      const r = book.price({ model, usage, at });
      expect(r.priced, model).toBe(false);
      if (!r.priced) expect(r.reason).toMatch(reason);
    }
    // A batch price set without the audio rate is unpriced too.
    expect(book.price({ model: 'gemini-2.5-flash', usage: { ...u(1000), input_audio: 1 }, at, serviceTier: 'batch' }).priced).toBe(false);
  });
  it('modality parts larger than their bucket are invalid usage', () => {
    for (const usage of [{ ...u(10), input_audio: 11 }, { ...u(0, 0, 0, 10), output_audio: 6, output_image: 5 }, { ...u(10), input_audio: -1 }, { ...u(10), input_audio: 1.5 }]) {
      const r = book.price({ model: 'gpt-audio', usage, at });
      expect(r.priced).toBe(false);
      if (!r.priced) expect(r.reason).toMatch(/^invalid usage: input_audio must be/);
    }
  });
  it('a service tier the entry does not list is unpriced', () => {
    const r = book.price({ provider: 'anthropic', model: 'claude-haiku-5-5', usage: u(10), at, serviceTier: 'flex' });
    expect(r.priced).toBe(false);
    if (!r.priced) expect(r.reason).toContain('no flex price');
  });
  it('gpt-5.4 priority / batch from 272k are unpriced (no long-context rate for those tiers is catalogued)', () => {
    for (const serviceTier of ['priority', 'batch'] as const) {
      const r = book.price({ provider: 'openai', model: 'gpt-5.4', usage: u(272000), at, serviceTier });
      expect(r.priced, serviceTier).toBe(false);
    }
  });
  it('invalid usage gives an unpriced result instead of throwing', () => {
    for (const usage of [u(-1), u(1.5), u(Number.NaN), u(0, 0, 1, 0, 0, 2)]) {
      expect(book.price({ provider: 'openai', model: 'gpt-4o', usage, at }).priced).toBe(false);
    }
    expect(book.price({ provider: 'openai', model: 'gpt-4o', usage: u(1), at: new Date('nope') }).priced).toBe(false);
  });
});
