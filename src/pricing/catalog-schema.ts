/**
 * Zod schemas for the shipped price catalog (data/price-catalog.yaml) and for configured price overrides.
 * The format is documented at the top of the catalog file.
 */
import { z } from 'zod';

/** A non-negative decimal written as a string: prices never pass through a binary float. */
export const decimalStringSchema = z
  .string({ error: 'must be a quoted decimal string such as "2.50"' })
  .regex(/^\d{1,9}(\.\d{1,12})?$/, { error: 'must be a non-negative decimal string such as "2.50"' });

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z$/;

/** YYYY-MM-DD (00:00 UTC) or an ISO instant in UTC. YAML timestamps are rejected: they must stay strings. */
export const effectiveDateSchema = z
  .string({ error: 'must be a date string YYYY-MM-DD or an ISO instant ending in Z' })
  .refine((s) => (DATE_RE.test(s) || INSTANT_RE.test(s)) && isRealDate(s), {
    error: 'must be a real date YYYY-MM-DD or an ISO instant ending in Z',
  });

export function isRealDate(s: string): boolean {
  const d = new Date(DATE_RE.test(s) ? `${s}T00:00:00Z` : s);
  if (Number.isNaN(d.getTime())) return false;
  // Reject 2025-02-30 and friends, which Date silently rolls over.
  return d.toISOString().slice(0, 10) === s.slice(0, 10);
}

export function effectiveDateMillis(s: string): number {
  return new Date(DATE_RE.test(s) ? `${s}T00:00:00Z` : s).getTime();
}

export const priceSetSchema = z.strictObject({
  input: decimalStringSchema,
  cache_read: decimalStringSchema.optional(),
  cache_write: decimalStringSchema.optional(),
  cache_write_1h: decimalStringSchema.optional(),
  output: decimalStringSchema.optional(),
  reasoning: decimalStringSchema.optional(),
  /** Modality rates: uncached audio input, audio output, image output. Absent = the model has no such price. */
  input_audio: decimalStringSchema.optional(),
  output_audio: decimalStringSchema.optional(),
  output_image: decimalStringSchema.optional(),
});
export type PriceSet = z.infer<typeof priceSetSchema>;

/**
 * A context-size tier. Providers word the boundary two ways: "above 200K" (Anthropic, Google: a 200,000-token
 * prompt is still standard) and "< 272K is standard" (OpenAI, xAI: a 272,000-token prompt is already long), so a
 * tier names exactly one of `above_input_tokens` (prompt > N) or `from_input_tokens` (prompt >= N).
 */
export const contextTierSchema = z
  .strictObject({
    above_input_tokens: z.int().positive().optional(),
    from_input_tokens: z.int().min(2).optional(),
    prices_usd_per_mtok: priceSetSchema,
  })
  .refine((t) => (t.above_input_tokens === undefined) !== (t.from_input_tokens === undefined), {
    error: 'a context tier needs exactly one of above_input_tokens (prompt > N) or from_input_tokens (prompt >= N)',
  });
export type ContextTier = z.infer<typeof contextTierSchema>;

/** The tier's threshold as "the prompt exceeds this many tokens". */
export function tierThreshold(t: ContextTier): number {
  return t.above_input_tokens ?? (t.from_input_tokens as number) - 1;
}

const contextTiersSchema = z
  .array(contextTierSchema)
  .max(16)
  .refine((tiers) => new Set(tiers.map(tierThreshold)).size === tiers.length, {
    error: 'two context tiers have the same threshold',
  });

export const serviceTierPricesSchema = z.strictObject({
  prices_usd_per_mtok: priceSetSchema,
  context_tiers: contextTiersSchema.optional(),
});

/**
 * provider_page: read on the provider's own pricing / model page. announcement: the provider's dated
 * announcement or changelog, not (yet) its price table. dated_price_map: a dated machine-readable price map
 * (genai-prices, LiteLLM, Langfuse) or a dated third-party page quoting the provider, with no provider page read.
 */
export const SOURCE_CONFIDENCE = ['provider_page', 'announcement', 'dated_price_map'] as const;
export type SourceConfidence = (typeof SOURCE_CONFIDENCE)[number];

const HHMM_RE = /^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/;

/** Minutes since 00:00 of "HH:MM" (24:00 = 1440, the end of the day). */
export function hhmmMinutes(s: string): number {
  return Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
}

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/**
 * Time-of-day pricing (DeepSeek's peak / off-peak): the entry's own prices are the off-peak rates; a call whose
 * instant falls in one of the UTC windows, on one of `days_utc` (every day when absent), is priced from `peak`.
 */
export const peakSchema = z.strictObject({
  windows_utc: z
    .array(
      z
        .strictObject({
          from: z.string().regex(HHMM_RE, { error: 'must be HH:MM (UTC)' }),
          to: z.string().regex(HHMM_RE, { error: 'must be HH:MM (UTC), 24:00 for the end of the day' }),
        })
        .refine((w) => hhmmMinutes(w.from) < hhmmMinutes(w.to), { error: 'a window must end after it starts (split one that crosses midnight)' }),
    )
    .min(1)
    .max(24),
  days_utc: z.array(z.enum(WEEKDAYS)).min(1).max(7).optional(),
  prices_usd_per_mtok: priceSetSchema,
});
export type PeakRule = z.infer<typeof peakSchema>;

/** A price multiplier such as "1.1" or "6": positive, exact (a quoted decimal string like the prices). */
const multiplierSchema = z
  .string({ error: 'must be a quoted decimal string such as "1.1"' })
  .regex(/^\d{1,3}(\.\d{1,6})?$/, { error: 'must be a decimal string such as "1.1"' })
  .refine((s) => Number(s) > 0, { error: 'must be greater than 0' });

/**
 * Premiums on every rate of the call's price set (context tier and service tier already applied):
 * fast: Anthropic fast mode (a call whose usage says speed "fast"); regional: a call served in one geography
 * (OpenAI data-residency endpoints, Bedrock geo / in-region inference profiles, Vertex regional endpoints,
 * Anthropic inference_geo other than "global"). A fast call on an entry without `fast` is reported unpriced;
 * a regional call on an entry without `regional` is priced at the list price (no premium for that model).
 */
export const multipliersSchema = z.strictObject({
  fast: multiplierSchema.optional(),
  regional: multiplierSchema.optional(),
});

/**
 * A per-call fee (web search, search grounding): `usd_per_1000` calls or `usd_per_call`, exactly one. `per_request`:
 * the provider bills once per request that used the tool, whatever the number of calls it reports (Gemini 2.5
 * grounding: per grounded prompt). Fees are not tokens: no context tier, service tier or multiplier changes them.
 */
export const feeSchema = z
  .strictObject({
    usd_per_1000: decimalStringSchema.optional(),
    usd_per_call: decimalStringSchema.optional(),
    per_request: z.boolean().optional(),
    /** The public page the fee was read on (tool pricing is often on its own page). */
    source: z.url({ protocol: /^https$/, error: 'must be an https URL of the public pricing page' }).optional(),
  })
  .refine((f) => (f.usd_per_1000 === undefined) !== (f.usd_per_call === undefined), {
    error: 'a fee needs exactly one of usd_per_1000 or usd_per_call',
  });
export type Fee = z.infer<typeof feeSchema>;

export const feesSchema = z.strictObject({
  web_search: feeSchema.optional(),
  web_search_preview: feeSchema.optional(),
  search_grounding: feeSchema.optional(),
});

const idSchema = z
  .string()
  .min(1)
  .max(200)
  .refine((s) => s === s.trim().toLowerCase(), { error: 'must be lower-case without surrounding spaces' });

const entryShape = {
  provider: z.string().min(1).max(100),
  model: idSchema,
  aliases: z.array(idSchema).max(200).optional(),
  match_prefixes: z.array(idSchema).max(50).optional(),
  effective_from: effectiveDateSchema,
  prices_usd_per_mtok: priceSetSchema,
  context_tiers: contextTiersSchema.optional(),
  service_tiers: z
    .strictObject({
      batch: serviceTierPricesSchema.optional(),
      flex: serviceTierPricesSchema.optional(),
      priority: serviceTierPricesSchema.optional(),
    })
    .optional(),
  multipliers: multipliersSchema.optional(),
  /** Per-call fees by kind (src/contract/names.ts FEE_KINDS); a call reporting calls of a kind the entry has no fee for is unpriced. */
  fees: feesSchema.optional(),
  /** Peak-hour prices; the entry's own prices are then the off-peak rates (standard tier only). */
  peak: peakSchema.optional(),
  /**
   * The first instant the model no longer answers (the provider retired the id): a call at or after it is
   * reported unpriced with that reason, never charged from a stale price.
   */
  retired_from: effectiveDateSchema.optional(),
  source: z.url({ protocol: /^https$/, error: 'must be an https URL of the public pricing page' }),
  source_date: effectiveDateSchema,
  /** How sure the source is (see the catalog header). Required of every shipped entry by the catalog tests. */
  source_confidence: z.enum(SOURCE_CONFIDENCE).optional(),
  /** Free text: what the source says that the numbers alone do not (promotions, caveats). */
  notes: z.string().min(1).max(2000).optional(),
};

/** Peak prices are one flat set: an entry with time-of-day pricing cannot also have context tiers (none does). */
const peakWithoutTiers = {
  check: (e: { peak?: unknown; context_tiers?: unknown[] }) => e.peak === undefined || !e.context_tiers?.length,
  error: { error: 'peak: time-of-day pricing cannot be combined with context_tiers', path: ['peak'] },
};

export const catalogEntrySchema = z.strictObject(entryShape).refine(peakWithoutTiers.check, peakWithoutTiers.error);
export type CatalogEntry = z.infer<typeof catalogEntrySchema>;

export const catalogSchema = z.strictObject({
  schema_version: z.literal(1),
  /** YAML anchors for sources; not read. */
  anchors: z.record(z.string(), z.unknown()).optional(),
  entries: z.array(catalogEntrySchema).min(1).max(10_000),
});
export type Catalog = z.infer<typeof catalogSchema>;

/**
 * A configured price: same fields as a catalog entry, but `source` / `source_date` are optional and
 * `effective_from` defaults to the beginning of time (the rate applies to every call). An override whose
 * provider/model names a catalog model also applies to every alias of that model.
 */
export const priceOverrideSchema = z
  .strictObject({
    ...entryShape,
    effective_from: effectiveDateSchema.optional(),
    source: z.string().min(1).max(2000).optional(),
    source_date: effectiveDateSchema.optional(),
  })
  .refine(peakWithoutTiers.check, peakWithoutTiers.error);
export type PriceOverride = z.infer<typeof priceOverrideSchema>;

export const priceOverridesSchema = z.array(priceOverrideSchema).max(10_000);
