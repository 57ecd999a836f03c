import { spawnSync } from 'node:child_process';
import { describe, it, expect, afterEach } from 'vitest';
import { BIN, cli, hasBin } from './helpers.js';

afterEach(() => {
  delete process.env.TOKENMETER_CURRENCY_RATES;
});

describe('tokenmeter price (in-process)', () => {
  it('--json prints exactly the documented object with exact decimal strings', async () => {
    const r = await cli('price', 'gpt-4o-2024-08-06', '--input', '1000', '--cache-read', '500', '--output', '200', '--json', '--at', '2026-01-01');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const obj = JSON.parse(r.out);
    expect(obj).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      total_usd: '0.005125',
      cost_usd: { input: '0.0025', cache_read: '0.000625', cache_write: '0', output: '0.002', reasoning: '0' },
      tokens: { input: 1000, cache_read: 500, cache_write: 0, output: 200, reasoning: 0 },
    });
    expect(r.out.trim().split('\n')).toHaveLength(1);
  });

  it('prints an aligned breakdown with the price entry, date and source', async () => {
    const r = await cli('price', 'claude-sonnet-4-5', '--provider', 'anthropic', '--input', '1000', '--cache-write', '1000', '--cache-write-1h', '400', '--output', '10', '--reasoning', '5', '--at', '2026-01-01');
    expect(r.code).toBe(0);
    expect(r.out).toContain('anthropic/claude-sonnet-4-5');
    expect(r.out).toContain('price anthropic/claude-sonnet-4-5@2025-09-29 (catalog)');
    expect(r.out).toContain('https://platform.claude.com/docs/en/about-claude/pricing');
    expect(r.out).toMatch(/cache_write\s+1000\s+3\.75 \/ 1h 6\s+0\.00465/);
    expect(r.out).toMatch(/total\s+2015\s+0\.007875\n/);
    const lines = r.out.split('\n').filter((l) => /^(type|input|cache_read|cache_write|output|reasoning|total) /.test(l));
    expect(new Set(lines.map((l) => l.length)).size).toBe(1); // aligned columns
  });

  it('applies --tier and --at (price history)', async () => {
    const before = JSON.parse((await cli('price', 'o3', '--input', '1000000', '--at', '2025-06-09', '--json')).out);
    const after = JSON.parse((await cli('price', 'o3', '--input', '1000000', '--at', '2025-06-10', '--json')).out);
    const batch = JSON.parse((await cli('price', 'o3', '--input', '1000000', '--tier', 'batch', '--at', '2025-07-01', '--json')).out);
    expect([before.total_usd, after.total_usd, batch.total_usd]).toEqual(['10', '2', '1']);
  });

  it('--at takes an instant: DeepSeek peak / off-peak hours (UTC), shown and in --json', async () => {
    const args = ['price', 'deepseek-v4-pro', '--provider', 'deepseek', '--input', '1000000', '--output', '1000000'];
    const peak = JSON.parse((await cli(...args, '--at', '2026-08-24T07:00:00Z', '--json')).out);
    const offPeak = JSON.parse((await cli(...args, '--at', '2026-08-24T10:00:00Z', '--json')).out);
    const weekend = JSON.parse((await cli(...args, '--at', '2026-08-29T07:00:00Z', '--json')).out);
    // Peak 1.32 + 3.96, off-peak half of it; Saturday 2026-08-29 is off-peak all day.
    expect([peak.total_usd, peak.price_period]).toEqual(['5.28', 'peak']);
    expect([offPeak.total_usd, offPeak.price_period]).toEqual(['2.64', 'off_peak']);
    expect([weekend.total_usd, weekend.price_period]).toEqual(['2.64', 'off_peak']);
    const human = await cli(...args, '--at', '2026-08-24T07:00:00Z');
    expect(human.out).toContain('deepseek/deepseek-v4-pro  standard tier, peak hours (2026-08-24T07:00:00.000Z)');
    expect(human.out).toMatch(/input\s+1000000\s+1\.32\s+1\.32/);
  });

  it('--speed fast and --processing regional apply the model\'s premiums, shown and in --json', async () => {
    const args = ['price', 'claude-opus-4-6', '--provider', 'anthropic', '--input', '1000000', '--output', '1000000', '--at', '2026-11-24'];
    const plain = JSON.parse((await cli(...args, '--json')).out);
    const fast = JSON.parse((await cli(...args, '--speed', 'fast', '--json')).out);
    const both = JSON.parse((await cli(...args, '--speed', 'fast', '--processing', 'regional', '--json')).out);
    expect([plain.total_usd, plain.adjustments]).toEqual(['30', undefined]);
    expect([fast.total_usd, fast.adjustments]).toEqual(['180', ['fast mode x6']]);
    expect([both.total_usd, both.adjustments]).toEqual(['198', ['fast mode x6', 'regional processing x1.1']]);
    const human = await cli(...args, '--speed', 'fast', '--processing', 'regional');
    expect(human.out).toContain('anthropic/claude-opus-4-6  standard tier, fast mode x6, regional processing x1.1');
    expect(human.out).toMatch(/output\s+1000000\s+165\s+165/);
    const noFast = await cli('price', 'claude-sonnet-4-6', '--input', '1', '--speed', 'fast');
    expect(noFast.code).toBe(2);
    expect(noFast.err).toMatch(/no fast-mode price for model claude-sonnet-4-6/);
  });

  it('--input-audio / --output-audio / --output-image price those parts at the model\'s modality rates', async () => {
    const r = JSON.parse((await cli('price', 'gpt-audio', '--input', '10000', '--input-audio', '6000', '--output', '5000', '--output-audio', '4000', '--json')).out);
    expect([r.total_usd, r.cost_usd.input, r.cost_usd.output]).toEqual(['0.468', '0.202', '0.266']);
    const human = await cli('price', 'gemini-2.5-flash-image', '--provider', 'gcp.gemini', '--input', '1000', '--output', '1390', '--output-image', '1290');
    expect(human.out).toMatch(/output\s+1390\s+2\.5 \/ image 30\s+0\.03895/);
    const text = await cli('price', 'gpt-5.5', '--input', '10', '--input-audio', '1');
    expect(text.code).toBe(2);
    expect(text.err).toMatch(/model gpt-5\.5 has no audio input price, and the call reports 1 audio input tokens/);
  });

  it('--web-searches / --web-search-preview-calls / --grounding-queries add per-call fees, shown as fee rows and in --json', async () => {
    const r = JSON.parse((await cli('price', 'gpt-4.1', '--input', '10', '--web-searches', '4', '--web-search-preview-calls', '1', '--at', '2026-11-24', '--json')).out);
    // 10 × $2 / 1M = 0.00002; 4 × $10 / 1,000 = 0.04; 1 × $25 / 1,000 = 0.025.
    expect(r.total_usd).toBe('0.06502');
    expect(r.fee_usd).toBe('0.065');
    expect(r.fees).toEqual([
      { kind: 'web_search', calls: 4, billed: 4, usd_per_1000: '10', cost_usd: '0.04' },
      { kind: 'web_search_preview', calls: 1, billed: 1, usd_per_1000: '25', cost_usd: '0.025' },
    ]);
    const human = await cli('price', 'claude-sonnet-4-6', '--input', '10000', '--output', '1000', '--web-searches', '3', '--at', '2026-11-24');
    expect(human.out).toMatch(/fee web_search\s+3 calls\s+10\/1k\s+0\.03/);
    expect(human.out).toMatch(/total\s+11000\s+0\.075/);
    const none = await cli('price', 'claude-sonnet-4-6', '--input', '1', '--grounding-queries', '2');
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/model claude-sonnet-4-6 has no search_grounding fee .*, and the call reports 2 search_grounding calls/);
    const bad = await cli('price', 'claude-sonnet-4-6', '--input', '1', '--web-searches', '-3');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--web-searches must be a non-negative integer');
  });

  it('--currency converts with --rate and rounds only for display', async () => {
    const r = await cli('price', 'gpt-4o', '--input', '1000000', '--output', '1000000', '--currency', 'EUR', '--rate', 'EUR=0.92', '--json', '--at', '2026-01-01');
    expect(r.code).toBe(0);
    const obj = JSON.parse(r.out);
    expect(obj.total_usd).toBe('12.5');
    expect(obj.display).toEqual({ currency: 'EUR', rate: '0.92', total: '11.5', formatted: '€11.50' });
    process.env.TOKENMETER_CURRENCY_RATES = 'GBP=0.79,EUR=0.9';
    const human = await cli('price', 'gpt-4o', '--input', '3', '--currency', 'gbp');
    expect(human.code).toBe(0);
    expect(human.out).toContain('total GBP: £0.00 (at 0.79 GBP/USD, rounded half-even)');
  });

  it.each([
    [['price', 'gpt-4o', '--currency', 'EUR', '--input', '1'], /no exchange rate for EUR: pass --rate EUR=<units per USD> or set TOKENMETER_CURRENCY_RATES/],
    [['price', 'no-such-model', '--input', '1'], /no price for model no-such-model/],
    [['price', 'gpt-4o-minii', '--input', '1'], /no price for model gpt-4o-minii \(did you mean: gpt-4o-mini, /],
    [['price', '--input', '1'], /missing <model> argument/],
    [['price', 'gpt-4o', 'gpt-5'], /expected one <model>/],
    [['price', 'gpt-4o', '--bogus', '1'], /unknown option --bogus/],
    [['price', 'gpt-4o', '--input', '-5'], /--input must be a non-negative integer, got '-5'/],
    [['price', 'gpt-4o', '--input=-5'], /--input must be a non-negative integer, got '-5'/],
    [['price', 'gpt-4o', '--output', '1.5'], /--output must be a non-negative integer, got '1.5'/],
    [['price', 'gpt-4o', '--reasoning', '1e3'], /--reasoning must be a non-negative integer/],
    [['price', 'gpt-4o', '--cache-read', '99999999999999999999'], /--cache-read is too large/],
    [['price', 'gpt-4o', '--at', '2025-13-01'], /--at must be a date YYYY-MM-DD or an ISO instant ending in Z \(2026-09-01T02:30:00Z\), got '2025-13-01'/],
    [['price', 'gpt-4o', '--at', '2026-09-01T02:30:00+08:00'], /--at must be a date YYYY-MM-DD or an ISO instant ending in Z/],
    [['price', 'gpt-4o', '--at', '2026-09-01T25:00:00Z'], /--at must be a date/],
    [['price', 'deepseek-chat', '--input', '1', '--at', '2026-08-01'], /model deepseek-chat was retired by its provider on 2026-07-24T15:59:00Z/],
    [['price', 'gpt-4o', '--at', 'yesterday'], /--at must be a date/],
    [['price', 'gpt-audio', '--input', '5', '--input-audio', '6'], /--input-audio must not exceed --input/],
    [['price', 'gpt-audio', '--output', '5', '--output-audio', '3', '--output-image', '3'], /--output-audio \+ --output-image must not exceed --output/],
    [['price', 'gpt-audio', '--input-audio', 'x'], /--input-audio must be a non-negative integer, got 'x'/],
    [['price', 'gpt-4o', '--speed', 'ludicrous'], /--speed must be standard or fast, got 'ludicrous'/],
    [['price', 'gpt-4o', '--processing', 'eu'], /--processing must be global or regional, got 'eu'/],
    [['price', 'gpt-4o', '--tier', 'turbo'], /--tier must be one of standard, batch, flex, priority, got 'turbo'/],
    [['price', 'gpt-4o', '--input'], /--input needs a value|argument missing/],
    [['price', 'gpt-4o', '--cache-write', '1', '--cache-write-1h', '2'], /--cache-write-1h must not exceed --cache-write/],
    [['price', 'gpt-4o', '--currency', 'EURO', '--input', '1'], /--currency must be an ISO 4217 code/],
    [['price', 'gpt-4o', '--currency', 'EUR', '--rate', 'EUR=abc'], /--rate/],
    [['price', 'gpt-4o', '--at', '2020-01-01', '--input', '1'], /earliest effective_from 2024-08-06/],
    [['price', 'text-embedding-3-small', '--output', '1'], /no output price/],
  ])('%j exits 2 with a clear message', async (argv, message) => {
    const r = await cli(...(argv as string[]));
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err.startsWith('tokenmeter price: ')).toBe(true);
  });

  it('--help exits 0', async () => {
    const r = await cli('price', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: tokenmeter price <model>');
  });
});

describe.skipIf(!hasBin)('tokenmeter price (real bin)', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, TOKENMETER_CURRENCY_RATES: '' } });

  it('prices through the built bin with --json', () => {
    const r = run('price', 'anthropic.claude-3-5-haiku-20241022-v1:0', '--provider', 'aws.bedrock', '--input', '1000', '--output', '1000', '--json', '--at', '2026-01-01');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ provider: 'anthropic', model: 'claude-3-5-haiku', total_usd: '0.0048' });
  });

  it('exits 2 for an unknown model with suggestions', () => {
    const r = run('price', 'gemini-2.5-prp', '--input', '1');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no price for model gemini-2\.5-prp \(did you mean: gemini-2\.5-pro/);
  });

  it('exits 2 naming a bad flag', () => {
    const r = run('price', 'gpt-4o', '--input', 'ten');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--input must be a non-negative integer, got 'ten'");
  });

  it('exits 2 without a rate for --currency', () => {
    const r = run('price', 'gpt-4o', '--input', '1', '--currency', 'EUR');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no exchange rate for EUR');
  });
});
