/**
 * The one check of a ledger record before anything is written. Two modes: `full` for records from anywhere
 * (`Ledger.commit`), and `trusted` for records the exporter's own pipeline built (ids from the OTLP decoders,
 * which check their byte length; costs and totals from `PriceBook.priceStrings`, property-tested against
 * decimal.js; the period from the calendar): every field's type and shape and the text limits of span-derived
 * strings, but not the id and money syntax nor the cost sum again. A record that fails either is refused alike.
 */
import { FEE_KINDS, TOKEN_TYPES, type FeeKind, type TokenType } from '../contract/names.js';
import { ExactDecimal } from '../pricing/index.js';
import { MAX_RECORD_TEXT_CHARS, recordTextProblem } from '../usage/record-text.js';
import { LedgerError } from './errors.js';
import type { LedgerRecord } from './types.js';

const Exact = ExactDecimal;

/** `full`: everything, for records from anywhere; `trusted`: for records built by the exporter's pipeline. */
export type RecordCheck = 'full' | 'trusted';

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const DECIMAL = /^\d{1,20}(\.\d{1,30})?$/;
const MAX_TEXT = MAX_RECORD_TEXT_CHARS;

function fail(index: number, field: string, message: string): never {
  throw new LedgerError(`record ${index}: ${field} ${message}`);
}

function checkText(i: number, field: string, v: unknown): void {
  // The one text rule extraction applies too (src/usage/record-text.ts): a record extraction accepts is never
  // refused here, so one bad span cannot fail a whole batch.
  const problem = recordTextProblem(v, MAX_TEXT);
  if (problem !== undefined) fail(i, field, problem);
}

/** Every record of a batch has the same period start: Date.parse once, not per record. */
let lastValidPeriod = '';

/**
 * Batches whose every record `validateRecord` has just accepted (the GroupCommitter validates per caller before
 * batching): the ledger does not check them a second time. Arrays, not records: nothing outside can add to it.
 */
const prevalidated = new WeakSet<LedgerRecord[]>();

export function markPrevalidated(batch: LedgerRecord[]): void {
  prevalidated.add(batch);
}

export function isPrevalidated(batch: LedgerRecord[]): boolean {
  return prevalidated.has(batch);
}

/**
 * Refuses a malformed record before anything is written (nothing of the batch is committed). `i` is the record's
 * index in its batch (named in the error); `check`: see RecordCheck.
 */
export function validateRecord(r: LedgerRecord, i: number, check: RecordCheck = 'full'): void {
  // Written out field by field: this runs for every span the exporter commits.
  const full = check !== 'trusted';
  if (typeof r !== 'object' || r === null) fail(i, 'record', 'must be an object');
  if (typeof r.traceId !== 'string' || (full ? !HEX32.test(r.traceId) : r.traceId.length !== 32)) fail(i, 'traceId', 'must be 32 lower-case hex characters');
  if (typeof r.spanId !== 'string' || (full ? !HEX16.test(r.spanId) : r.spanId.length !== 16)) fail(i, 'spanId', 'must be 16 lower-case hex characters');
  if (!Number.isSafeInteger(r.endTimeMillis) || r.endTimeMillis < 0) fail(i, 'endTimeMillis', 'must be a non-negative integer');
  if (typeof r.periodStart !== 'string' || (r.periodStart !== lastValidPeriod && !Number.isFinite(Date.parse(r.periodStart)))) {
    fail(i, 'periodStart', 'must be an ISO instant');
  }
  lastValidPeriod = r.periodStart;
  checkText(i, 'userId', r.userId);
  checkText(i, 'plan', r.plan);
  checkText(i, 'provider', r.provider);
  checkText(i, 'rawModel', r.rawModel);
  checkText(i, 'model', r.model);
  checkText(i, 'operation', r.operation);
  checkText(i, 'source', r.source);
  if (r.feature !== undefined) checkText(i, 'feature', r.feature);
  if (r.serviceTier !== undefined) checkText(i, 'serviceTier', r.serviceTier);
  if (r.priceId !== undefined) checkText(i, 'priceId', r.priceId);
  if (r.outcome !== 'success' && r.outcome !== 'error') fail(i, 'outcome', 'must be "success" or "error"');
  if (typeof r.estimated !== 'boolean') fail(i, 'estimated', 'must be a boolean');
  if (typeof r.priced !== 'boolean') fail(i, 'priced', 'must be a boolean');
  const u = r.usage;
  if (typeof u !== 'object' || u === null) fail(i, 'usage', 'must be an object');
  if (!count(u.input)) fail(i, 'usage.input', 'must be a non-negative integer');
  if (!count(u.cache_read)) fail(i, 'usage.cache_read', 'must be a non-negative integer');
  if (!count(u.cache_write)) fail(i, 'usage.cache_write', 'must be a non-negative integer');
  if (!count(u.output)) fail(i, 'usage.output', 'must be a non-negative integer');
  if (!count(u.reasoning)) fail(i, 'usage.reasoning', 'must be a non-negative integer');
  const h = u.cache_write_1h ?? 0;
  if (!count(h) || h > u.cache_write) fail(i, 'usage.cache_write_1h', 'must be an integer between 0 and cache_write');
  const calls = r.toolCalls;
  if (calls !== undefined) {
    if (typeof calls !== 'object' || calls === null) fail(i, 'toolCalls', 'must be an object of call counts');
    for (const k of Object.keys(calls)) {
      if (!(FEE_KINDS as readonly string[]).includes(k)) fail(i, `toolCalls.${k}`, `is not a fee kind (${FEE_KINDS.join(', ')})`);
      if (!count(calls[k as FeeKind])) fail(i, `toolCalls.${k}`, 'must be a non-negative integer');
    }
  }
  const c = r.costUsd;
  if (typeof c !== 'object' || c === null) fail(i, 'costUsd', 'must be an object');
  if (r.feeCostUsd !== undefined && (typeof r.feeCostUsd !== 'string' || r.feeCostUsd.length === 0)) fail(i, 'feeCostUsd', 'must be a non-negative decimal string');
  if (full) checkMoney(r, i, c);
  else {
    if (
      typeof c.input !== 'string' ||
      typeof c.cache_read !== 'string' ||
      typeof c.cache_write !== 'string' ||
      typeof c.output !== 'string' ||
      typeof c.reasoning !== 'string'
    ) {
      fail(i, 'costUsd', 'must hold a decimal string per token type');
    }
    if (typeof r.totalCostUsd !== 'string' || r.totalCostUsd.length === 0) fail(i, 'totalCostUsd', 'must be a non-negative decimal string');
  }
}

/** The money strings' syntax and that the per-type costs add up to the total, exactly. */
function checkMoney(r: LedgerRecord, i: number, c: Record<TokenType, string>): void {
  let scale = 0;
  scale = moneyScale(i, 'costUsd.input', c.input, scale);
  scale = moneyScale(i, 'costUsd.cache_read', c.cache_read, scale);
  scale = moneyScale(i, 'costUsd.cache_write', c.cache_write, scale);
  scale = moneyScale(i, 'costUsd.output', c.output, scale);
  scale = moneyScale(i, 'costUsd.reasoning', c.reasoning, scale);
  const total = r.totalCostUsd;
  scale = moneyScale(i, 'totalCostUsd', total, scale);
  if (r.feeCostUsd !== undefined) {
    // Few calls have fees: the exact check with decimals, the five token costs plus the fee part.
    moneyScale(i, 'feeCostUsd', r.feeCostUsd, scale);
    const sum = TOKEN_TYPES.reduce((s, t) => s.plus(c[t]), new Exact(r.feeCostUsd));
    if (!sum.eq(total)) fail(i, 'totalCostUsd', `(${total}) must equal the sum of costUsd and feeCostUsd (${sum.toFixed()})`);
    return;
  }
  if (!costsAddUp(c, total, scale)) {
    const costSum = TOKEN_TYPES.reduce((s, t) => s.plus(c[t]), new Exact(0));
    fail(i, 'totalCostUsd', `(${total}) must equal the sum of costUsd (${costSum.toFixed()})`);
  }
}

function count(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Checks a money string; returns the larger of `scale` and its fraction digits. */
function moneyScale(i: number, field: string, v: unknown, scale: number): number {
  if (typeof v !== 'string' || !DECIMAL.test(v)) fail(i, field, 'must be a non-negative decimal string');
  return Math.max(scale, fractionDigits(v));
}

/**
 * Exact check with scaled integers (decimal.js costs ~0.5 µs per addition, and this runs on every record):
 * plain numbers while every scaled value has at most 15 digits (their sum stays below 2^53), BigInt otherwise.
 */
function costsAddUp(costUsd: Record<TokenType, string>, total: string, scale: number): boolean {
  let sum = 0;
  for (const t of TOKEN_TYPES) {
    const c = costUsd[t];
    if (c === '0') continue;
    const v = scaledNumber(c, scale);
    if (Number.isNaN(v)) return bigCostsAddUp(costUsd, total, scale);
    sum += v;
  }
  const tv = scaledNumber(total, scale);
  return Number.isNaN(tv) ? bigCostsAddUp(costUsd, total, scale) : sum === tv;
}

function bigCostsAddUp(costUsd: Record<TokenType, string>, total: string, scale: number): boolean {
  let big = 0n;
  for (const t of TOKEN_TYPES) if (costUsd[t] !== '0') big += BigInt(scaledDigits(costUsd[t], scale));
  return big === BigInt(scaledDigits(total, scale));
}

const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);

/** A DECIMAL-shaped string × 10^scale as an exact integer number, or NaN when it needs more than 15 digits. */
function scaledNumber(s: string, scale: number): number {
  let v = 0;
  let digits = 0;
  let frac = -1;
  for (let k = 0; k < s.length; k++) {
    const ch = s.charCodeAt(k);
    if (ch === 46) {
      frac = 0;
      continue;
    }
    if (v !== 0 || ch !== 48) digits++; // leading zeros do not count
    v = v * 10 + (ch - 48);
    if (frac >= 0) frac++;
  }
  const shift = scale - (frac < 0 ? 0 : frac);
  if (digits + shift > 15) return NaN;
  return v * POW10[shift];
}

function fractionDigits(s: string): number {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** The digits of a DECIMAL-shaped string as an integer count of 10^-scale (scale >= its fraction digits), no leading zeros. */
function scaledDigits(s: string, scale: number): string {
  const dot = s.indexOf('.');
  const digits = dot < 0 ? s + '0'.repeat(scale) : s.slice(0, dot) + s.slice(dot + 1) + '0'.repeat(scale - (s.length - dot - 1));
  let k = 0;
  while (k < digits.length - 1 && digits.charCodeAt(k) === 48) k++;
  return k === 0 ? digits : digits.slice(k);
}
