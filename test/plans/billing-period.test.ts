import { describe, it, expect } from 'vitest';
import { BillingCalendar, ManualClock, periodFor, nextPeriod, startOfLocalDay } from '../../src/plans/index.js';

const iso = (d: Date) => d.toISOString();

describe('billing periods', () => {
  it('defaults to calendar months in UTC', () => {
    const p = periodFor(new Date('2025-03-17T12:00:00Z'));
    expect(iso(p.start)).toBe('2025-03-01T00:00:00.000Z');
    expect(iso(p.end)).toBe('2025-04-01T00:00:00.000Z');
  });

  it.each([
    ['2025-01-31T23:59:59.999Z', '2025-01-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z'],
    ['2025-02-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z', '2025-03-01T00:00:00.000Z'],
    ['2024-12-31T23:59:59.999Z', '2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['2024-02-29T10:00:00.000Z', '2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
  ])('UTC boundary %s', (at, start, end) => {
    const p = periodFor(new Date(at));
    expect([iso(p.start), iso(p.end)]).toEqual([start, end]);
  });

  it('rolls over with an injected clock', () => {
    const cal = new BillingCalendar();
    const clock = new ManualClock('2025-05-31T23:59:59.999Z');
    const may = cal.currentPeriod(clock);
    expect(iso(may.start)).toBe('2025-05-01T00:00:00.000Z');
    clock.advance(1);
    const june = cal.currentPeriod(clock);
    expect(iso(june.start)).toBe('2025-06-01T00:00:00.000Z');
    expect(cal.nextPeriod(may)).toEqual(june);
    expect(cal.previousPeriod(june)).toEqual(may);
  });

  it('anchor day 15: periods run from the 15th to the 14th', () => {
    const cal = new BillingCalendar({ anchor_day: 15 });
    const a = cal.periodFor(new Date('2025-01-14T23:59:59Z'));
    expect([iso(a.start), iso(a.end)]).toEqual(['2024-12-15T00:00:00.000Z', '2025-01-15T00:00:00.000Z']);
    const b = cal.periodFor(new Date('2025-01-15T00:00:00Z'));
    expect([iso(b.start), iso(b.end)]).toEqual(['2025-01-15T00:00:00.000Z', '2025-02-15T00:00:00.000Z']);
    expect(iso(cal.nextPeriod(b).end)).toBe('2025-03-15T00:00:00.000Z');
  });

  it('periods start at local midnight in a time zone, across DST (Europe/Berlin)', () => {
    const cal = new BillingCalendar({ timezone: 'Europe/Berlin' });
    // March 2025: starts at CET (UTC+1), DST begins 30 March, April starts at CEST (UTC+2).
    const march = cal.periodFor(new Date('2025-03-15T12:00:00Z'));
    expect(iso(march.start)).toBe('2025-02-28T23:00:00.000Z');
    expect(iso(march.end)).toBe('2025-03-31T22:00:00.000Z');
    // 22:30 UTC on 31 March is already 00:30 on 1 April in Berlin.
    expect(iso(cal.periodFor(new Date('2025-03-31T22:30:00Z')).start)).toBe('2025-03-31T22:00:00.000Z');
    expect(iso(cal.periodFor(new Date('2025-03-31T21:59:59.999Z')).start)).toBe('2025-02-28T23:00:00.000Z');
    // October: DST ends 26 Oct; November starts at CET again.
    const oct = cal.periodFor(new Date('2025-10-27T00:00:00Z'));
    expect([iso(oct.start), iso(oct.end)]).toEqual(['2025-09-30T22:00:00.000Z', '2025-10-31T23:00:00.000Z']);
  });

  it('America/New_York with an anchor day inside the DST change week', () => {
    const cal = new BillingCalendar({ timezone: 'America/New_York', anchor_day: 9 });
    // DST began Sunday 9 March 2025 at 02:00 local; midnight of the 9th is still EST (UTC-5).
    const p = cal.periodFor(new Date('2025-03-20T00:00:00Z'));
    expect(iso(p.start)).toBe('2025-03-09T05:00:00.000Z');
    expect(iso(p.end)).toBe('2025-04-09T04:00:00.000Z');
    expect(iso(cal.periodFor(new Date('2025-03-09T04:59:59Z')).start)).toBe('2025-02-09T05:00:00.000Z');
  });

  it('a day whose midnight is skipped by DST starts at the transition (America/Santiago)', () => {
    // Chile moved clocks from 00:00 to 01:00 on 7 September 2025 (UTC-4 -> UTC-3).
    const start = startOfLocalDay(2025, 9, 7, 'America/Santiago');
    expect(iso(start)).toBe('2025-09-07T04:00:00.000Z');
    const cal = new BillingCalendar({ timezone: 'America/Santiago', anchor_day: 7 });
    const p = cal.periodFor(new Date('2025-09-07T04:00:00Z'));
    expect(iso(p.start)).toBe('2025-09-07T04:00:00.000Z');
    expect(iso(cal.periodFor(new Date('2025-09-07T03:59:59Z')).start)).toBe('2025-08-07T04:00:00.000Z');
  });

  it('consecutive periods tile time without gaps (property over a year in several zones)', () => {
    for (const timezone of ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata', 'Pacific/Chatham']) {
      for (const anchor_day of [1, 15, 28]) {
        let p = periodFor(new Date('2024-12-20T00:00:00Z'), { timezone, anchor_day });
        for (let i = 0; i < 14; i++) {
          const n = nextPeriod(p, { timezone, anchor_day });
          expect(n.start.getTime()).toBe(p.end.getTime());
          expect(n.end.getTime()).toBeGreaterThan(n.start.getTime());
          // every instant of the period maps back to it
          expect(periodFor(new Date(n.start.getTime()), { timezone, anchor_day })).toEqual(n);
          expect(periodFor(new Date(n.end.getTime() - 1), { timezone, anchor_day })).toEqual(n);
          p = n;
        }
      }
    }
  });

  it('rejects invalid period configuration with the path', () => {
    expect(() => new BillingCalendar({ timezone: 'Mars/Olympus' })).toThrow(/timezone/);
    expect(() => new BillingCalendar({ anchor_day: 31 })).toThrow(/anchor_day/);
    expect(() => periodFor(new Date('nope'))).toThrow(RangeError);
  });
});
