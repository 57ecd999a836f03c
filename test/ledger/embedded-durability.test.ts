import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LedgerError, openLedger, type PeriodRollup } from '../../src/ledger/index.js';
import { makeRecord } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-embedded-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('embedded ledger', () => {
  it('one directory serves one ledger at a time', async () => {
    const dir = join(tmp, 'locked');
    const first = await openLedger(dir);
    const err = await openLedger(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect((err as Error).message).toMatch(/in use by process \d+ \(this process\).*postgres:\/\//);
    await first.close();
    expect(existsSync(join(dir, 'tokenmeter.lock'))).toBe(false);
    const again = await openLedger(dir);
    await again.close();
  });

  it('what a killed process acknowledged is in the ledger when it is reopened (and its stale lock is taken over)', async () => {
    const dir = join(tmp, 'locked'); // created by the test above
    const periodStart = '2030-07-01T00:00:00.000Z';
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'crash-child.ts'), dir, periodStart], {
      cwd: join(import.meta.dirname, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ack = await new Promise<{ committed: [string, string][]; rollups: PeriodRollup[] }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('ACK '));
        if (line) resolve(JSON.parse(line.slice(4)));
      });
      child.on('exit', (code) => reject(new Error(`child exited ${code} before acknowledging: ${stderr}`)));
    });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(ack.committed).toHaveLength(10);
    expect(readFileSync(join(dir, 'tokenmeter.lock'), 'utf8').trim()).toBe(String(child.pid));

    const ledger = await openLedger(dir);
    try {
      expect(await ledger.loadPeriodRollups(periodStart)).toEqual(ack.rollups);
      expect(ack.rollups.map((r) => [r.userId, r.requests, r.costUsd])).toEqual([
        ['k0', 5, '0.0235'],
        ['k1', 5, '0.0285'],
      ]);
      // Everything acknowledged is remembered for dedup too.
      const replay = ack.committed.map(([traceId, spanId]) => makeRecord({ periodStart, traceId, spanId }));
      expect((await ledger.commit(replay)).committed).toHaveLength(0);
    } finally {
      await ledger.close();
    }
  });
});
