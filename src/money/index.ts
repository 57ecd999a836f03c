/**
 * Money, in one place. Amounts are USD as exact decimal strings in ONE canonical form everywhere (ledger,
 * metrics, usage API, snapshots, dumps): what decimal.js `toFixed()` writes for the exact value — no exponent,
 * no sign for zero, no leading zeros, no trailing zeros after the point ("0", "3", "0.00047125"). Nothing is
 * ever a binary float until a Prometheus sample is written.
 *
 * - `ExactDecimal`: decimal.js at 200 significant digits (the default 20 would round); the general fallback.
 * - `ExactSum`: a running sum for the exporter's per-record counters (scaled integers, BigInt past 2^53).
 * - `LimbSum`: a mutable running sum kept in seven small-integer limbs, for the journal ledger's millions of
 *   totals rows (in-object fields, no allocation per addition).
 * - `scaledToDecimalString`, `sumEquals`: integer arithmetic for pricing a call and checking a record's sum.
 * All four are property-tested against decimal.js (test/money/money.test.ts).
 */
export { ExactDecimal, toExact, toShared } from './exact-decimal.js';
export { ExactSum, addMoney, canonicalMoney, isCanonicalDecimal, sumMoney } from './exact-sum.js';
export { LimbSum } from './limb-sum.js';
export { fractionDigits, safeScaledToDecimalString, scaledToDecimalString, sumEquals } from './scaled.js';
