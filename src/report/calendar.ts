import type { TokenmeterConfig } from '../config/index.js';
import { BillingCalendar, startOfLocalDay } from '../plans/index.js';
import type { PeriodCalendar } from './period.js';

/** The configured billing calendar, able to name a period by its month (the anchor day in the time zone). */
export function calendarOf(period: TokenmeterConfig['period']): PeriodCalendar & { timeZone: string } {
  const calendar = new BillingCalendar(period);
  return {
    timeZone: calendar.timeZone,
    periodFor: (at) => calendar.periodFor(at),
    periodNamed: (year, month) => calendar.periodFor(startOfLocalDay(year, month, calendar.anchorDay, calendar.timeZone)),
  };
}

/** The configured display currency and its rate, when it is not USD; an error message when the rate is missing. */
export function displayRate(display: TokenmeterConfig['display']): { currency: string; rate: string } | undefined {
  if (display.currency === 'USD') return undefined;
  const rate = (display.rates as Record<string, string> | undefined)?.[display.currency];
  if (rate === undefined) throw new Error(`display.currency is ${display.currency} but display.rates has no rate for it`);
  return { currency: display.currency, rate };
}
