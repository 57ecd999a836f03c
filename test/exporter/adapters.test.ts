import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cachedPeriods } from '../../src/exporter/adapters.js';
import { BillingCalendar } from '../../src/plans/index.js';

describe('cachedPeriods', () => {
  it('answers exactly what the calendar answers, for any sequence of instants (DST zone, anchor day, boundaries)', () => {
    const calendar = new BillingCalendar({ timezone: 'America/New_York', anchor_day: 28 });
    const from = Date.parse('2025-01-01T00:00:00Z');
    const to = Date.parse('2027-01-01T00:00:00Z');
    // Instants anywhere, and instants right at period boundaries (start, end - 1 ms, end).
    const boundaries = [];
    for (let p = calendar.periodFor(new Date(from)); p.start.getTime() < to; p = calendar.periodFor(p.end)) {
      boundaries.push(p.start.getTime() - 1, p.start.getTime(), p.end.getTime() - 1);
    }
    const instant = fc.oneof(fc.integer({ min: from, max: to }), fc.constantFrom(...boundaries));
    fc.assert(
      fc.property(fc.array(instant, { minLength: 1, maxLength: 40 }), (instants) => {
        const cached = cachedPeriods((at) => calendar.periodFor(at), 2);
        for (const t of instants) {
          const got = cached(new Date(t));
          const want = calendar.periodFor(new Date(t));
          expect([got.start.toISOString(), got.end.toISOString()]).toEqual([want.start.toISOString(), want.end.toISOString()]);
        }
      }),
      { seed: 4, numRuns: 200 },
    );
  });

  it('computes a period once for many instants inside it', () => {
    let computed = 0;
    const calendar = new BillingCalendar({});
    const cached = cachedPeriods((at) => (computed++, calendar.periodFor(at)));
    for (let i = 0; i < 1000; i++) cached(new Date(Date.parse('2026-05-01T00:00:00Z') + i * 60_000));
    expect(computed).toBe(1);
  });
});
