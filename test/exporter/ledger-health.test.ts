import { describe, expect, it } from 'vitest';
import { LedgerHealth } from '../../src/exporter/ledger-health.js';

describe('LedgerHealth: up and ready from the last commits', () => {
  it('a failed commit holds ledger_up at 0 against probes for the hold time, each failure extending it; a commit clears it', () => {
    let t = 0;
    const ups: boolean[] = [];
    const logs: string[] = [];
    const h = new LedgerHealth({ setUp: (u) => ups.push(u), log: (l) => logs.push(l), now: () => t, failureHoldMillis: 30_000, logIntervalMillis: 60_000 });
    expect(h.answered()).toBe(true);
    h.commitFailed(new Error('ENOSPC'));
    t = 29_999;
    expect(h.answered()).toBe(false);
    h.commitFailed(new Error('ENOSPC'));
    t = 59_998;
    expect(h.answered()).toBe(false);
    t = 59_999;
    // No commit failed for the hold time (no traffic): the probe decides again.
    expect(h.answered()).toBe(true);
    h.commitFailed(new Error('ENOSPC'));
    t = 61_000;
    h.commitFailed(new Error('ENOSPC'));
    h.commitSucceeded();
    expect(h.recentFailure()).toBeUndefined();
    expect(ups).toEqual([true, false, false, true, false, false, true]);
    // Rate-limited: the first failure, one more a minute later (with the count), and the recovery.
    expect(logs).toEqual([
      'ledger commit failed, answering 503 so senders retry: ENOSPC',
      'ledger commit failed, answering 503 so senders retry: ENOSPC (2 more failed since the last message)',
      'ledger commits succeed again',
    ]);
  });
  it('a failed probe sets it down at once', () => {
    const ups: boolean[] = [];
    const h = new LedgerHealth({ setUp: (u) => ups.push(u), log: () => {}, failureHoldMillis: 1000 });
    h.failed();
    expect(ups).toEqual([false]);
  });
});
