import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BillingCalendar } from '../../src/plans/index.js';
import type { BillingPeriod } from '../../src/plans/types.js';

/** Counts how often the calendar really works a period out. */
class CountingCalendar extends BillingCalendar {
  computed = 0;
  protected override computePeriod(millis: number): BillingPeriod {
    this.computed++;
    return super.computePeriod(millis);
  }
}

describe('BillingCalendar period cache', () => {
  it('answers exactly what a fresh calendar answers, for any sequence of instants (DST zone, anchor day, boundaries)', () => {
    const config = { timezone: 'America/New_York', anchor_day: 28 };
    const reference = (t: number) => new BillingCalendar(config).periodFor(new Date(t));
    const from = Date.parse('2025-01-01T00:00:00Z');
    const to = Date.parse('2027-01-01T00:00:00Z');
    // Instants anywhere, and instants right at period boundaries (start - 1 ms, start, end - 1 ms).
    const boundaries: number[] = [];
    for (let p = reference(from); p.start.getTime() < to; p = reference(p.end.getTime())) {
      boundaries.push(p.start.getTime() - 1, p.start.getTime(), p.end.getTime() - 1);
    }
    const instant = fc.oneof(fc.integer({ min: from, max: to }), fc.constantFrom(...boundaries));
    fc.assert(
      fc.property(fc.array(instant, { minLength: 1, maxLength: 40 }), (instants) => {
        const cached = new BillingCalendar(config);
        for (const t of instants) {
          const got = cached.periodFor(new Date(t));
          const want = reference(t);
          expect([got.start.toISOString(), got.end.toISOString()]).toEqual([want.start.toISOString(), want.end.toISOString()]);
        }
      }),
      { seed: 4, numRuns: 200 },
    );
  });

  it('works a period out once for many instants inside it, and hands out copies', () => {
    const calendar = new CountingCalendar({});
    const first = calendar.periodFor(new Date('2026-05-01T00:00:00Z'));
    first.start.setTime(0); // a caller mutating its copy must not change the cache
    for (let i = 0; i < 1000; i++) calendar.periodFor(new Date(Date.parse('2026-05-01T00:00:00Z') + i * 60_000));
    expect(calendar.computed).toBe(1);
    expect(calendar.periodFor(new Date('2026-05-20T00:00:00Z')).start.toISOString()).toBe('2026-05-01T00:00:00.000Z');
  });
});
