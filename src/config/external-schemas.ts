// TEMPORARY until the plans and pricing modules land: the sub-schemas other modules own are re-exported here so
// schema.ts has one place to import them from.
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const decimalString = z.union([z.string().regex(/^\d+(\.\d+)?$/), z.number().nonnegative()]);
const limits = z.strictObject({ tokens: positiveInt.optional(), requests: positiveInt.optional(), cost_usd: decimalString.optional() });
export const plansConfigSchema = z.record(z.string(), z.strictObject({ limits: limits.optional() }));
export const usersConfigSchema = z.record(z.string(), z.strictObject({ plan: z.string().optional(), limits: limits.optional() }));
export const periodConfigSchema = z.strictObject({ timezone: z.string().default('UTC'), anchor_day: z.number().int().min(1).max(28).default(1) });
export { priceOverridesSchema, volumeDiscountsSchema, currencyRatesSchema } from '../pricing/index.js';
