import { spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { BIN, cli, hasBin } from './helpers.js';

describe('tokenmeter models', () => {
  it('lists one row per model with the price in force now', async () => {
    const r = await cli('models');
    expect(r.code).toBe(0);
    const rows = r.out.split('\n').filter((l) => /^(openai|anthropic|google|mistral|deepseek|xai) /.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(40);
    const o3 = rows.find((l) => /^openai\s+o3\s/.test(l));
    expect(o3).toMatch(/2\.00\s+0\.50\s+2\.00\s+2\.00\s+8\.00/); // the price after the 2025-06-10 cut
    expect(rows.filter((l) => /^openai\s+o3\s/.test(l))).toHaveLength(1);
  });

  it('lists the models added for issue 20 with how sure their source is and the source', async () => {
    const r = await cli('models');
    expect(r.code).toBe(0);
    const row = (model: string) => r.out.split('\n').find((l) => new RegExp(`^\\w+\\s+${model.replace(/\./g, '\\.')}\\s`).test(l));
    for (const [model, confidence, source] of [
      ['gpt-5.5', 'provider_page', 'https://developers.openai.com/api/docs/models/gpt-5.5'],
      ['gpt-5.6-sol', 'dated_price_map', 'https://developers.openai.com/api/docs/changelog'],
      ['gpt-6-astra', 'dated_price_map', 'https://developers.openai.com/api/docs/models/gpt-6-astra'],
      ['claude-opus-4-6', 'provider_page', 'https://platform.claude.com/docs/en/about-claude/pricing'],
      ['claude-mythos-5', 'provider_page', 'https://platform.claude.com/docs/en/about-claude/pricing'],
      ['gemini-3.1-pro-preview', 'dated_price_map', 'https://ai.google.dev/gemini-api/docs/pricing'],
      ['mistral-medium-3.5', 'dated_price_map', 'https://mistral.ai/pricing#api-pricing'],
      ['grok-4.20', 'dated_price_map', 'https://docs.x.ai/docs/models'],
    ]) {
      expect(row(model), model).toMatch(new RegExp(`\\s${confidence}\\s+${source.replace(/[.?]/g, '\\$&')}$`));
    }
    // The long-context boundary is shown as written: >= for OpenAI's "< 272K is standard", > for "above 200K".
    expect(row('gpt-5.5')).toMatch(/\s>=272k,batch,flex,priority\s/);
    expect(row('gemini-3.1-pro-preview')).toMatch(/\s>200k,batch\s/);
  });

  it('filters by provider, accepting OTel provider names', async () => {
    const r = await cli('models', '--provider', 'gcp.gemini');
    expect(r.code).toBe(0);
    expect(r.out).toContain('gemini-2.5-pro');
    expect(r.out).not.toContain('gpt-4o');
  });

  it('--json lists every dated entry with sources', async () => {
    const r = await cli('models', '--provider', 'deepseek', '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.out) as { model: string; effective_from: string; source: string; prices_usd_per_mtok: { input: string } }[];
    expect(list.filter((e) => e.model === 'deepseek-chat').map((e) => `${e.effective_from} ${e.prices_usd_per_mtok.input}`)).toEqual([
      '2025-02-08T16:00:00Z 0.27',
      '2025-09-05T16:00:00Z 0.56',
      '2025-09-29 0.28',
      '2026-04-24 0.14',
    ]);
    expect(list.find((e) => e.model === 'deepseek-chat' && e.effective_from === '2026-04-24')).toMatchObject({
      retired_from: '2026-07-24T15:59:00Z',
      source_confidence: 'provider_page',
    });
    expect(list.every((e) => e.source.startsWith('https://'))).toBe(true);
  });

  it('--json shows per-call fees with their sources (Gemini 2.5 per grounded prompt)', async () => {
    const r = await cli('models', '--provider', 'google', '--json');
    const list = JSON.parse(r.out) as { model: string; fees?: Record<string, unknown> }[];
    expect(list.find((e) => e.model === 'gemini-2.5-flash')?.fees).toEqual({
      search_grounding: { usd_per_1000: '35.00', per_request: true, source: 'https://ai.google.dev/gemini-api/docs/pricing' },
    });
    expect(list.find((e) => e.model === 'gemini-embedding-001')?.fees).toBeUndefined();
  });

  it('filters the new xai provider by its OTel name (x_ai)', async () => {
    const r = await cli('models', '--provider', 'x_ai', '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.out) as { provider: string; model: string; source: string; source_confidence: string }[];
    expect(list.map((e) => e.model)).toEqual(['grok-4.20', 'grok-4.3', 'grok-4.5', 'grok-4.6', 'grok-code-fast-1']);
    expect(list.every((e) => e.provider === 'xai' && e.source.startsWith('https://docs.x.ai/') && e.source_confidence === 'dated_price_map')).toBe(true);
  });

  it.each([
    [['models', '--provider', 'acme'], /--provider: no catalog models for 'acme'/],
    [['models', '--verbose'], /unknown option --verbose/],
    [['models', 'extra'], /unexpected argument 'extra'/],
  ])('%j exits 2', async (argv, message) => {
    const r = await cli(...(argv as string[]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it.skipIf(!hasBin)('works through the built bin', () => {
    const r = spawnSync(process.execPath, [BIN, 'models', '--provider', 'anthropic', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { provider: string }[]).every((e) => e.provider === 'anthropic')).toBe(true);
  });
});
