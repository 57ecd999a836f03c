import { describe, it, expect } from 'vitest';
import { Decimal } from 'decimal.js';
import { convertFromUsd, CurrencyError, currencyRatesSchema, formatMoney, parseCurrencyRates } from '../../src/pricing/index.js';

describe('currency', () => {
  it('converts exactly with configured rates (no rounding before formatting)', () => {
    expect(convertFromUsd(new Decimal('0.005125'), 'EUR', { EUR: '0.92' }).toFixed()).toBe('0.004715');
    expect(convertFromUsd(new Decimal('12.5'), 'usd', {}).toFixed()).toBe('12.5');
  });
  it('a missing rate or unknown currency is a clear error', () => {
    expect(() => convertFromUsd(new Decimal(1), 'GBP', { EUR: '0.92' })).toThrow(/no exchange rate for GBP/);
    expect(() => convertFromUsd(new Decimal(1), 'EURO', {})).toThrow(CurrencyError);
    expect(() => convertFromUsd(new Decimal(1), 'XQZ', { XQZ: '1' })).toThrow(/unknown currency/);
  });
  it.each([
    ['1234.565', 'EUR', '€1,234.56'], // half-even: 6 is even, stays
    ['1234.575', 'EUR', '€1,234.58'], // half-even: 7 is odd, goes up
    ['0.125', 'USD', '$0.12'],
    ['0.135', 'USD', '$0.14'],
    ['1234.5', 'JPY', '¥1,234'], // JPY has no minor unit
    ['1235.5', 'JPY', '¥1,236'],
    ['1.0005', 'KWD', 'KWD 1.000'],
    ['0.1', 'GBP', '£0.10'],
    ['12345678901234567.891', 'USD', '$12,345,678,901,234,567.89'],
  ])('formatMoney(%s, %s) = %s', (amount, currency, expected) => {
    expect(formatMoney(new Decimal(amount), currency).replace(/\u00a0/g, ' ')).toBe(expected);
  });
  it('parses the env / flag format and validates it', () => {
    expect(parseCurrencyRates('EUR=0.92, gbp=0.79')).toEqual({ EUR: '0.92', GBP: '0.79' });
    expect(() => parseCurrencyRates('EUR')).toThrow(/CODE=RATE/);
    expect(() => parseCurrencyRates('EUR=0')).toThrow(/greater than zero/);
    expect(() => parseCurrencyRates('EUR=-1')).toThrow(CurrencyError);
    expect(currencyRatesSchema.safeParse({ EUR: 0.92 }).success).toBe(false);
  });
});
