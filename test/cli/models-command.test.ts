import { spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { BIN, cli, hasBin } from './helpers.js';

describe('tokenmeter models', () => {
  it('lists one row per model with the price in force now', async () => {
    const r = await cli('models');
    expect(r.code).toBe(0);
    const rows = r.out.split('\n').filter((l) => /^(openai|anthropic|google|mistral|deepseek) /.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(40);
    const o3 = rows.find((l) => /^openai\s+o3\s/.test(l));
    expect(o3).toMatch(/2\.00\s+0\.50\s+2\.00\s+2\.00\s+8\.00/); // the price after the 2025-06-10 cut
    expect(rows.filter((l) => /^openai\s+o3\s/.test(l))).toHaveLength(1);
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
