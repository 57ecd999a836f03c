/**
 * Display-currency conversion. The base currency is USD; rates are configured (never fetched). Amounts stay
 * exact until formatMoney rounds them, half-to-even (banker's rounding: no systematic upward drift when many
 * amounts are rounded), to the currency's minor unit as Intl reports it (JPY 0, EUR 2, KWD 3).
 */
import { Decimal } from 'decimal.js';
import { z } from 'zod';
import { ExactDecimal, toExact, toShared } from '../money/index.js';

const KNOWN_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

export class CurrencyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CurrencyError';
  }
}

/** A rate is "units of the currency per 1 USD", as a positive decimal string: `{ EUR: "0.92" }`. */
export const currencyRatesSchema = z.record(
  z.string().refine((c) => /^[A-Z]{3}$/.test(c) && KNOWN_CURRENCIES.has(c), {
    error: 'must be an ISO 4217 currency code such as EUR',
  }),
  z
    .string()
    .regex(/^\d{1,12}(\.\d{1,12})?$/, { error: 'must be a positive decimal string such as "0.92"' })
    // zod runs refinements even after a failed regex, so guard before constructing a Decimal.
    .refine((s) => !/^\d{1,12}(\.\d{1,12})?$/.test(s) || !new Decimal(s).isZero(), { error: 'must be greater than zero' }),
);
export type CurrencyRates = z.infer<typeof currencyRatesSchema>;

function checkCurrency(currency: string): string {
  const c = currency.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(c) || !KNOWN_CURRENCIES.has(c)) {
    throw new CurrencyError(`unknown currency '${currency}': use an ISO 4217 code such as EUR, GBP or JPY`);
  }
  return c;
}

/** Converts an exact USD amount to `currency` with the configured rate. Exact (no rounding). */
export function convertFromUsd(usd: Decimal, currency: string, rates: Readonly<Record<string, string>>): Decimal {
  const c = checkCurrency(currency);
  if (c === 'USD') return toShared(toExact(usd));
  const rate = rates[c];
  if (rate === undefined) {
    throw new CurrencyError(`no exchange rate for ${c}: configure one as units of ${c} per 1 USD, e.g. ${c}=0.92`);
  }
  const parsed = currencyRatesSchema.safeParse({ [c]: rate });
  if (!parsed.success) throw new CurrencyError(`invalid exchange rate for ${c}: '${rate}' ${parsed.error.issues[0]?.message ?? ''}`.trim());
  return toShared(toExact(usd).times(new ExactDecimal(rate)));
}

/** Digits after the decimal point of the currency's minor unit (Intl's view: JPY 0, USD 2, KWD 3). */
export function minorUnitDigits(currency: string): number {
  const c = checkCurrency(currency);
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: c }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** Rounds half-to-even to the minor unit and formats, e.g. `€1,234.57`, `¥1,235`, `-$0.01`. */
export function formatMoney(amount: Decimal, currency: string): string {
  const c = checkCurrency(currency);
  const digits = minorUnitDigits(c);
  const rounded = toExact(amount).toDecimalPlaces(digits, ExactDecimal.ROUND_HALF_EVEN);
  const fmt = new Intl.NumberFormat('en-US', {
    style: 'currency',
    currency: c,
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  // Intl formats a decimal string exactly (no float conversion), so large amounts keep every digit.
  return fmt.format(rounded.toFixed(digits) as unknown as number);
}

/** Parses `EUR=0.92,GBP=0.79` (the TOKENMETER_CURRENCY_RATES / --rate format). */
export function parseCurrencyRates(text: string): CurrencyRates {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw new CurrencyError(`invalid currency rate '${p}': expected CODE=RATE, e.g. EUR=0.92`);
    out[p.slice(0, eq).trim().toUpperCase()] = p.slice(eq + 1).trim();
  }
  const parsed = currencyRatesSchema.safeParse(out);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CurrencyError(`invalid currency rate ${String(issue?.path[0] ?? '')}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
