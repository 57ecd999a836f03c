/**
 * Runs `node bench/report/run.mjs --quick` (5,000 calls, 100 users) so the report benchmark never rots: every
 * report row counts every call, and both reports on both ledgers give the same exact total. No timings are asserted
 * (speed is measured in bench/, never in tests). Needs dist/.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findPostgres } from '../helpers/postgres.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('bench/report/run.mjs --quick', () => {
  it('reports every call with one exact total on every ledger', async () => {
    const args = [join(ROOT, 'bench/report/run.mjs'), '--quick', ...(findPostgres() ? [] : ['--no-postgres'])];
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: ROOT, maxBuffer: 1 << 20, timeout: 170_000 });
    const rows = stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ledger') && !l.startsWith('| ---'));
    const reports = rows.filter((l) => l.includes('--by'));
    expect(reports.length).toBe(findPostgres() ? 4 : 2);
    const totals = new Set(reports.map((l) => /\| (\d+) requests, \$([\d.]+) \|$/.exec(l)?.slice(1).join(' ')));
    expect([...totals]).toHaveLength(1);
    expect([...totals][0]).toMatch(/^5000 \d+\.\d+$/);
    for (const l of reports) expect(l).toMatch(l.includes('--by user') ? /\| --by user \| 100 \|/ : /\| --by day \| 30 \|/);
  }, 180_000);
});
