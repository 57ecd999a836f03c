/**
 * Per-call fees in both ledgers: stored with their call counts, the five token costs + the fee = the total (also
 * net of a volume discount), the period totals include them, and they survive a reopen (journal layout 2,
 * PostgreSQL migration 2).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TOKEN_TYPES } from '../../src/contract/names.js';
import { discountsFromTiers, LedgerError, openLedger, type Ledger, type LedgerCall, type LedgerRecord } from '../../src/ledger/index.js';
import { CommitEncoder, decodeEntry, ENTRY_LAYOUT } from '../../src/ledger/journal-entry.js';
import { ExactDecimal } from '../../src/pricing/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { makeRecord } from './fixtures.js';

const hasPostgres = findPostgres() !== undefined;
const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-fees-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

const P = '2030-07-01T00:00:00.000Z';

/** A priced call with token costs and a per-call fee: total = tokens + fee. */
function withFee(userId: string, provider: string, tokenCost: string, fee: string, calls: LedgerRecord['toolCalls']): LedgerRecord {
  const r = makeRecord({ periodStart: P, userId, provider, tokens: { input: 1000 }, costs: { input: tokenCost } });
  r.feeCostUsd = fee;
  r.toolCalls = calls;
  r.totalCostUsd = new ExactDecimal(tokenCost).plus(fee).toFixed();
  return r;
}

async function collect(it: AsyncIterable<LedgerCall>): Promise<LedgerCall[]> {
  const out: LedgerCall[] = [];
  for await (const c of it) out.push(c);
  return out;
}

function partsAddUp(r: LedgerRecord): void {
  let sum = new ExactDecimal(r.feeCostUsd ?? '0');
  for (const t of TOKEN_TYPES) sum = sum.plus(r.costUsd[t]);
  expect(sum.toFixed(), `${r.userId} parts`).toBe(new ExactDecimal(r.totalCostUsd).toFixed());
}

describe.each([
  { name: 'journal' as const, skip: false },
  { name: 'postgres' as const, skip: !hasPostgres },
])('per-call fees on the $name ledger', ({ name, skip }) => {
  it.skipIf(skip)('stores fees and counts, adds them to the totals, splits a discount over them, and keeps them across a reopen', async () => {
    const clock = new ManualClock('2030-07-05T10:00:00Z');
    // acme: 10% off everything above $0.01 of spend this period.
    const options = { clock, discounts: discountsFromTiers({ acme: [{ above_usd: '0.01', percent_off: '10' }] }) };
    let pg: TestPostgres | undefined;
    let storage: string;
    if (name === 'journal') storage = join(tmp, `j${++n}`);
    else {
      pg = await startPostgres();
      storage = pg.url;
    }
    let ledger: Ledger = await openLedger(storage, options);
    try {
      const records = [
        withFee('ann', 'anthropic', '0.003', '0.03', { web_search: 3 }),
        withFee('ann', 'openai', '0.0001', '0.035', { web_search: 1, web_search_preview: 1 }),
        withFee('bob', 'acme', '0.01', '0.01', { search_grounding: 1 }),
        makeRecord({ periodStart: P, userId: 'bob', provider: 'openai', tokens: { input: 10 }, costs: { input: '0.5' } }),
      ];
      const res = await ledger.commit(records);
      expect(res.committed).toHaveLength(4);
      for (const r of res.committed) partsAddUp(r);
      // acme's call: gross 0.02, 10% off the 0.01 above the threshold = 0.001, spread 50 / 50 over input and the fee.
      const acme = res.committed.find((r) => r.provider === 'acme')!;
      expect(acme).toMatchObject({ grossCostUsd: '0.02', discountUsd: '0.001', totalCostUsd: '0.019', feeCostUsd: '0.0095' });
      expect(acme.costUsd.input).toBe('0.0095');
      const byUser = Object.fromEntries(res.rollups.map((r) => [r.userId, r.costUsd]));
      expect(byUser).toEqual({ ann: '0.0681', bob: '0.519' });

      const before = await collect(ledger.scanCalls({ periodStart: new Date(P) }));
      await ledger.close();
      ledger = await openLedger(storage, options);
      const after = await collect(ledger.scanCalls({ periodStart: new Date(P) }));
      expect(after.map(({ receivedAtMillis: _r, ...rest }) => rest)).toEqual(before.map(({ receivedAtMillis: _r, ...rest }) => rest));
      const ann = after.filter((c) => c.userId === 'ann').sort((a, b) => (a.provider < b.provider ? -1 : 1));
      expect(ann.map((c) => [c.provider, c.feeCostUsd, c.toolCalls, c.totalCostUsd])).toEqual([
        ['anthropic', '0.03', { web_search: 3 }, '0.033'],
        ['openai', '0.035', { web_search: 1, web_search_preview: 1 }, '0.0351'],
      ]);
      const plain = after.find((c) => c.userId === 'bob' && c.provider === 'openai')!;
      expect('feeCostUsd' in plain || 'toolCalls' in plain).toBe(false);
      for (const c of after) partsAddUp(c);
      const rollups = await ledger.loadPeriodRollups(new Date(P));
      expect(Object.fromEntries(rollups.map((r) => [r.userId, r.costUsd]))).toEqual({ ann: '0.0681', bob: '0.519' });
    } finally {
      await ledger.close();
      await pg?.cleanup();
    }
  }, 60_000);

  it.skipIf(skip)('refuses a record whose parts do not add up to its total, naming the field', async () => {
    let pg: TestPostgres | undefined;
    let storage: string;
    if (name === 'journal') storage = join(tmp, `j${++n}`);
    else {
      pg = await startPostgres();
      storage = pg.url;
    }
    const ledger = await openLedger(storage, { clock: new ManualClock('2030-07-05T10:00:00Z') });
    try {
      const bad = withFee('eve', 'anthropic', '0.003', '0.03', { web_search: 3 });
      bad.totalCostUsd = '0.003';
      await expect(ledger.commit([bad])).rejects.toThrow(LedgerError);
      await expect(ledger.commit([bad])).rejects.toThrow(/totalCostUsd.*must equal the sum of costUsd and feeCostUsd \(0\.033\)/);
      const hostile = withFee('eve', 'anthropic', '0.003', '0.03', { web_search: -1 });
      await expect(ledger.commit([hostile])).rejects.toThrow(/toolCalls\.web_search/);
      const unknownKind = withFee('eve', 'anthropic', '0.003', '0.03', { image_search: 1 } as LedgerRecord['toolCalls']);
      await expect(ledger.commit([unknownKind])).rejects.toThrow(/toolCalls\.image_search/);
    } finally {
      await ledger.close();
      await pg?.cleanup();
    }
  }, 60_000);
});

describe('journal commit entries with fees (layout 2)', () => {
  it('an entry without fees stays layout 1 (160-byte records); one with fees is layout 2 (176 bytes) and decodes back', () => {
    const plain = makeRecord({ periodStart: P, tokens: { input: 1 }, costs: { input: '0.1' } });
    const fee = withFee('ann', 'anthropic', '0.003', '0.03', { web_search: 3, search_grounding: 2 });
    const e1 = new CommitEncoder(1);
    e1.add(plain, P, undefined);
    const p1 = Buffer.concat(e1.finish(1));
    expect([p1[1], p1.readUInt16LE(2)]).toEqual([1, 160]);
    expect(() => new CommitEncoder(1).add(fee, P, undefined)).toThrow(/layout-1 commit entry/);

    const e2 = new CommitEncoder(2, true);
    e2.add(plain, P, undefined);
    e2.add(fee, P, undefined);
    const p2 = Buffer.concat(e2.finish(1));
    expect([p2[1], p2.readUInt16LE(2)]).toEqual([ENTRY_LAYOUT, 176]);
    const decoded = decodeEntry(p2, (s) => s);
    if (decoded.kind !== 'commit') throw new Error('not a commit');
    const recs: LedgerRecord[] = [];
    decoded.forEach((v) => recs.push(v.record()));
    expect(recs[0]).not.toHaveProperty('feeCostUsd');
    expect(recs[0]).not.toHaveProperty('toolCalls');
    expect(recs[1]).toMatchObject({ feeCostUsd: '0.03', toolCalls: { web_search: 3, search_grounding: 2 }, totalCostUsd: '0.033' });
  });
});
