/**
 * `tokenmeter reprice` (issue 18, point 3): the flags' input boundary, and a re-pricing of an embedded ledger end
 * to end through the command (dry run writes nothing, no confirmation refuses, --yes applies once, a second run
 * has nothing to do, the closed period's report says it was re-priced), and the refusal while an exporter holds
 * the ledger.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type LedgerRecord } from '../../src/ledger/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { hex } from '../ledger/fixtures.js';
import { cli } from './helpers.js';

const WRONG = PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '25', output: '10' } }] });
const FIXED_OVERRIDES = [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '2.5', output: '10' } }];
const FIXED = PriceBook.load({ overrides: FIXED_OVERRIDES });

function call(rawModel: string, day: number, userId: string, input: number): LedgerRecord {
  const endTimeMillis = Date.parse('2026-11-01T00:00:00Z') + day * 86_400_000 + 3_600_000;
  const usage = { input, cache_read: 0, cache_write: 0, output: 100, reasoning: 0 };
  const p = WRONG.priceStrings({ provider: 'openai', model: rawModel, usage, at: new Date(endTimeMillis) });
  if (!p.priced) throw new Error('priced');
  return {
    traceId: hex(16), spanId: hex(8), endTimeMillis, provider: 'openai', rawModel, operation: 'chat', usage, estimated: false, userId,
    outcome: 'success', source: 'tokenmeter', plan: 'free', periodStart: '2026-11-01T00:00:00.000Z', model: p.model, priced: true,
    priceId: p.priceId, costUsd: p.costUsd, totalCostUsd: p.totalUsd,
  };
}

describe('tokenmeter reprice', () => {
  let dir: string;
  let config: string;
  const calls = [
    call('gpt-4o-2024-08-06', 2, 'ann', 12_345),
    call('gpt-4o-2024-08-06', 29, 'bob', 777),
    call('gpt-4o-mini', 5, 'ann', 5000),
    call('gpt-4o-2024-08-06', 30 + 3, 'ann', 1000), // December 4: outside --to 2026-11-30
  ];
  calls[3]!.periodStart = '2026-12-01T00:00:00.000Z';
  const delta = (c: LedgerRecord) => {
    const p = FIXED.priceStrings({ provider: 'openai', model: c.rawModel, usage: c.usage, at: new Date(c.endTimeMillis) });
    return new Decimal(p.priced ? p.totalUsd : '0').minus(c.totalCostUsd);
  };
  const total = delta(calls[0]!).plus(delta(calls[1]!)).toFixed();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-cli-'));
    const storage = join(dir, 'ledger');
    config = join(dir, 'tokenmeter.yaml');
    writeFileSync(config, `storage: ${JSON.stringify(storage)}\npricing:\n  overrides: ${JSON.stringify(FIXED_OVERRIDES)}\n`);
    const ledger = await openLedger(storage);
    await ledger.commit(calls);
    await ledger.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    [[], /--from is required/],
    [['--from', '2026-13-01'], /not a calendar date/],
    [['--from', '2026-02-30'], /not a calendar date/],
    [['--from', 'yesterday'], /must be a date/],
    [['--from', '2026-11-01T00:00:00'], /with a zone/],
    [['--from', 'x'.repeat(5000)], /must be a date/],
    [['--from', '2026-11-02', '--to', '2026-11-01'], /--to must be after --from/],
    [['--from', '2026-11-01', '--model', 'gpt\u001b[31m'], /--model must be a model name/],
    [['--from', '2026-11-01', '--model', 'm'.repeat(300)], /--model must be a model name/],
    [['--from', '2026-11-01', '--format', 'xml'], /--format must be table or json/],
    [['--from', '2026-11-01', '--dry-run', '--yes'], /contradict/],
    [['--from', '2026-11-01', '--by', ''], /--by must be/],
    [['--from', '2026-11-01', '--bogus'], /unknown option --bogus/],
    [['--from', '2026-11-01', 'extra'], /unexpected argument/],
    [['--from'], /--from needs a value/],
  ])('refuses bad flags with a clear message (case %#)', async (args, message) => {
    const r = await cli('reprice', ...(args as string[]), '--config', config);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(message);
  });

  it('dry run shows the exact differences and writes nothing; no confirmation refuses; --yes applies once', async () => {
    const range = ['--from', '2026-11-01', '--to', '2026-11-30', '--config', config];
    const dry = await cli('reprice', ...range, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(new RegExp(`TOTAL\\s+2\\s+${total.replace('.', '\\.')}\\n`));
    expect(dry.out).toContain('dry run: nothing written');
    const json = JSON.parse((await cli('reprice', ...range, '--dry-run', '--format', 'json')).out) as Record<string, unknown>;
    expect(json).toMatchObject({ dry_run: true, calls: 2, delta_usd: total });
    // stdin is not a terminal under the test runner: without --yes nothing is applied.
    const refused = await cli('reprice', ...range);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/confirm with --yes/);
    const applied = await cli('reprice', ...range, '--yes', '--by', 'finance');
    expect(applied.code).toBe(0);
    const id = /applied: audit id (\S+), by finance/.exec(applied.out)?.[1];
    expect(id).toBeDefined();
    const again = await cli('reprice', ...range, '--yes');
    expect(again.out).toContain('nothing to re-price');
    const report = await cli('report', '--period', '2026-11', '--config', config);
    expect(report.code).toBe(0);
    expect(report.out).toMatch(new RegExp(`re-priced on \\S+ by finance, audit id ${id}: 2 call\\(s\\), ${total.replace('.', '\\.')} USD`));
    const december = await cli('report', '--period', '2026-12', '--config', config);
    expect(december.out).not.toContain('re-priced');
    // `tokenmeter ledger dump` (the directory read from outside) shows the re-priced calls with their new cost.
    const dump = await cli('ledger', 'dump', join(dir, 'ledger'));
    const dumped = dump.out.trim().split('\n').map((l) => JSON.parse(l) as LedgerRecord & { repricedBy?: string });
    for (const c of calls) {
      const d = dumped.find((x) => x.spanId === c.spanId)!;
      const changed = c === calls[0] || c === calls[1];
      expect(d.repricedBy).toBe(changed ? id : undefined);
      expect(d.totalCostUsd).toBe(changed ? new Decimal(c.totalCostUsd).plus(delta(c)).toFixed() : c.totalCostUsd);
    }
  });

  it('refuses while an exporter holds the embedded ledger, pointing to POST /api/v1/reprice', async () => {
    const held = await openLedger(join(dir, 'ledger'));
    try {
      const r = await cli('reprice', '--from', '2026-11-01', '--config', config);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/held by a running exporter .*POST \/api\/v1\/reprice on its operations port, body \{"from":"2026-11-01"\}/);
    } finally {
      await held.close();
    }
  });
});
