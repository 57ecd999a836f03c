/**
 * The cost engine: resolves a span's provider/model to a dated catalog (or override) entry and prices a Usage
 * with exact decimals. On the exporter's per-call path, so resolution is pre-indexed and memoised.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { FEE_KINDS, TOKEN_TYPES, type TokenType } from '../contract/names.js';
import type { Usage } from '../usage/usage.js';
import {
  catalogSchema,
  effectiveDateMillis,
  priceOverridesSchema,
  type Catalog,
  type CatalogEntry,
  type ContextTier,
  type PriceOverride,
  type PriceSet,
  tierThreshold,
  hhmmMinutes,
  WEEKDAYS,
} from './catalog-schema.js';
import { Decimal } from 'decimal.js';
import { SHIPPED_CATALOG_YAML } from './catalog-data.js';
import { ExactDecimal } from './decimal.js';
import { CATALOG_PROVIDERS, catalogProviderFor, normalizeModelId, providerLabel } from './normalize.js';
import type {
  AppliedRates,
  FeeLine,
  PriceQuery,
  PriceResult,
  PriceStringsResult,
  PricedResult,
  PricedStringsResult,
  ServiceTier,
  UnpricedResult,
} from './types.js';

export interface PriceBookOptions {
  /** Configured prices (negotiated rates, fine-tunes, self-hosted models); they win over the catalog. */
  overrides?: readonly unknown[];
  /** Another catalog file instead of the shipped one (tests, forks). */
  catalogPath?: string;
  /** An already-parsed catalog document instead of a file. */
  catalog?: unknown;
  /** Size of the memo of resolved model ids (default 4096). */
  lookupCacheSize?: number;
}

/** Thrown when the catalog or an override is invalid; the message names the entry and the field. */
export class PriceCatalogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PriceCatalogError';
  }
}

/**
 * Where the shipped catalog's source file is in the package (both `src/pricing/price-book.ts` and
 * `dist/pricing/price-book.js` are two levels below its root), for tools and tests. PriceBook.load() does not
 * read it: it parses the copy embedded in catalog-data.ts, which survives bundling. The URL is built from a
 * variable on purpose: webpack turns a `new URL` of a string literal relative to the module's own URL into an
 * asset URL object, which is not a file path.
 */
export const DEFAULT_CATALOG_PATH = catalogSourcePath(import.meta.url);

function catalogSourcePath(moduleUrl: string): string {
  try {
    return fileURLToPath(new URL('../../data/price-catalog.yaml', moduleUrl));
  } catch {
    // A bundler's module URL that is not a file: URL; only the path is unknown, the embedded catalog works.
    return 'data/price-catalog.yaml';
  }
}

interface Rates {
  input: ExactDecimal;
  cache_read: ExactDecimal;
  cache_write: ExactDecimal;
  cache_write_1h: ExactDecimal;
  output: ExactDecimal | undefined;
  reasoning: ExactDecimal | undefined;
  input_audio: ExactDecimal | undefined;
  output_audio: ExactDecimal | undefined;
  output_image: ExactDecimal | undefined;
  /** The rates as exact decimal strings (what a priced result reports). */
  applied: Readonly<AppliedRates>;
  /** The same rates per token as scaled integers, for exact costs without decimal.js on the per-call path. */
  perToken: ScaledRates;
}

type RateName = keyof AppliedRates;

/**
 * Rates in USD per token as integers in units of 10^-scale USD (one scale for the whole set): a cost is then
 * tokens × factor, exact, and the per-type costs and their total are added as integers. `factor` is a JS number
 * when it is a safe integer (NaN otherwise); `big` is always set for the BigInt fallback (products past 2^53).
 */
interface ScaledRates {
  scale: number;
  factor: Record<RateName, number>;
  big: Record<RateName, bigint>;
}

const RATE_NAMES: readonly RateName[] = [
  'input', 'cache_read', 'cache_write', 'cache_write_1h', 'output', 'reasoning', 'input_audio', 'output_audio', 'output_image',
];

/** `rate` (USD per million tokens) per token: digits and the number of decimals (the 10^-6 adds six). */
function perTokenDigits(rate: ExactDecimal | undefined): { digits: bigint; decimals: number } {
  if (rate === undefined) return { digits: 0n, decimals: 0 };
  const text = rate.toFixed();
  const dot = text.indexOf('.');
  const decimals = dot === -1 ? 0 : text.length - dot - 1;
  return { digits: BigInt(dot === -1 ? text : text.slice(0, dot) + text.slice(dot + 1)), decimals: decimals + 6 };
}

function scaleRates(r: Omit<Rates, 'applied' | 'perToken'>): ScaledRates {
  const parts = RATE_NAMES.map((n) => perTokenDigits(r[n]));
  const scale = Math.max(...parts.map((p) => p.decimals));
  const factor = {} as Record<RateName, number>;
  const big = {} as Record<RateName, bigint>;
  RATE_NAMES.forEach((n, i) => {
    const b = parts[i].digits * 10n ** BigInt(scale - parts[i].decimals);
    big[n] = b;
    factor[n] = b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : Number.NaN;
  });
  return { scale, factor, big };
}

/** "", "0", "00", ... for the zeros after the decimal point. */
const ZEROS = Array.from({ length: 40 }, (_, i) => '0'.repeat(i));

/** An exact integer count of 10^-scale units as a decimal string, as decimal.js's toFixed() writes it. */
export function scaledToDecimalString(units: number | bigint, scale: number): string {
  if (typeof units === 'number') return safeScaledToDecimalString(units, scale);
  if (units === 0n) return '0';
  let s = String(units);
  if (s.length <= scale) s = '0'.repeat(scale - s.length + 1) + s;
  const cut = s.length - scale;
  let end = s.length;
  while (end > cut && s.charCodeAt(end - 1) === 48) end--;
  return end === cut ? s.slice(0, cut) : `${s.slice(0, cut)}.${s.slice(cut, end)}`;
}

/** `scaledToDecimalString` for a safe integer: the trailing zeros dropped arithmetically (exact), one String(). */
function safeScaledToDecimalString(units: number, scale: number): string {
  if (units === 0) return '0';
  let u = units;
  let sc = scale;
  while (sc > 0 && u % 10 === 0) {
    u /= 10;
    sc--;
  }
  const s = String(u);
  if (sc === 0) return s;
  const cut = s.length - sc;
  return cut > 0 ? `${s.slice(0, cut)}.${s.slice(cut)}` : `0.${ZEROS[-cut] ?? '0'.repeat(-cut)}${s}`;
}

/** The sub-bucket parts of a call: the 1-hour cache writes and the modality parts (all validated integers). */
interface Parts {
  cacheWrite1h: number;
  inputAudio: number;
  outputAudio: number;
  outputImage: number;
}

/** tokens × factor, 0 for no tokens (a missing rate's factor may be NaN only when it is never used). */
function times(tokens: number, factor: number): number {
  return tokens === 0 ? 0 : tokens * factor;
}

/**
 * Exact per-type costs and total, as decimal strings. Integer arithmetic in units of 10^-scale USD: plain numbers
 * while every product and sum stays a safe integer (any real call), BigInt otherwise.
 */
function callCosts(u: Usage, p: Parts, r: ScaledRates): { costUsd: Record<TokenType, string>; totalUsd: string } {
  const f = r.factor;
  const cw1h = p.cacheWrite1h;
  const input = times(u.input - p.inputAudio, f.input) + times(p.inputAudio, f.input_audio);
  const cacheRead = u.cache_read * f.cache_read;
  const cacheWrite = (u.cache_write - cw1h) * f.cache_write + cw1h * f.cache_write_1h;
  const output =
    times(u.output - p.outputAudio - p.outputImage, f.output) + times(p.outputAudio, f.output_audio) + times(p.outputImage, f.output_image);
  const reasoning = times(u.reasoning, f.reasoning);
  const total = input + cacheRead + cacheWrite + output + reasoning;
  // Every term is a non-negative product of safe integers (or NaN), so an inexact step shows in the total.
  if (total <= Number.MAX_SAFE_INTEGER) {
    return {
      costUsd: {
        input: safeScaledToDecimalString(input, r.scale),
        cache_read: safeScaledToDecimalString(cacheRead, r.scale),
        cache_write: safeScaledToDecimalString(cacheWrite, r.scale),
        output: safeScaledToDecimalString(output, r.scale),
        reasoning: safeScaledToDecimalString(reasoning, r.scale),
      },
      totalUsd: safeScaledToDecimalString(total, r.scale),
    };
  }
  const b = r.big;
  const bInput = BigInt(u.input - p.inputAudio) * b.input + BigInt(p.inputAudio) * b.input_audio;
  const bCacheRead = BigInt(u.cache_read) * b.cache_read;
  const bCacheWrite = BigInt(u.cache_write - cw1h) * b.cache_write + BigInt(cw1h) * b.cache_write_1h;
  const bOutput =
    BigInt(u.output - p.outputAudio - p.outputImage) * b.output + BigInt(p.outputAudio) * b.output_audio + BigInt(p.outputImage) * b.output_image;
  const bReasoning = BigInt(u.reasoning) * b.reasoning;
  return {
    costUsd: {
      input: scaledToDecimalString(bInput, r.scale),
      cache_read: scaledToDecimalString(bCacheRead, r.scale),
      cache_write: scaledToDecimalString(bCacheWrite, r.scale),
      output: scaledToDecimalString(bOutput, r.scale),
      reasoning: scaledToDecimalString(bReasoning, r.scale),
    },
    totalUsd: scaledToDecimalString(bInput + bCacheRead + bCacheWrite + bOutput + bReasoning, r.scale),
  };
}

interface TierRates {
  aboveInputTokens: number;
  rates: Rates;
  /** "above N input tokens", as priced results name the tier. */
  label: string;
}

interface PricePlan {
  base: Rates;
  /** Sorted by threshold, highest first. */
  contextTiers: TierRates[];
}

/** One dated entry, compiled for pricing. */
export interface CompiledEntry {
  provider: string;
  model: string;
  effectiveFrom: string;
  effectiveFromMillis: number;
  origin: 'catalog' | 'override';
  source?: string;
  sourceDate?: string;
  ids: string[];
  prefixes: string[];
  plans: Partial<Record<ServiceTier, PricePlan>>;
  /** Identifies the entry in the ledger: `[override:]provider/model@effective_from`. */
  priceId: string;
  /** Calls at or after this instant are unpriced: the provider retired the model (NaN = not retired). */
  retiredFromMillis: number;
  /** Time-of-day pricing: the standard plan in the peak windows (the entry's own prices are off-peak). */
  peak?: CompiledPeak;
  /** The validated document entry, for listings. */
  raw: CatalogEntry | PriceOverride;
}

interface CompiledPeak {
  /** [start, end) in minutes since 00:00 UTC. */
  windows: [number, number][];
  /** Bit d set = peak windows apply on UTC weekday d (0 = Sunday). */
  dayMask: number;
  plan: PricePlan;
}

function dayMask(days: readonly (typeof WEEKDAYS)[number][]): number {
  let mask = 0;
  for (const day of days) mask |= 1 << WEEKDAYS.indexOf(day);
  return mask;
}

function inPeak(peak: CompiledPeak, atMillis: number): boolean {
  const d = new Date(atMillis);
  if ((peak.dayMask & (1 << d.getUTCDay())) === 0) return false;
  const minute = d.getUTCHours() * 60 + d.getUTCMinutes();
  return peak.windows.some(([from, to]) => minute >= from && minute < to);
}

/** Entries claiming one id, sorted by effective_from ascending. */
type Timeline = CompiledEntry[];

interface IdIndex {
  exact: Map<string, Timeline>;
  /** Longest prefix first. */
  prefixes: { prefix: string; timeline: Timeline }[];
}

interface Resolution {
  normalized: string;
  overrideTimeline?: Timeline;
  catalogTimeline?: Timeline;
}

function compileRates(set: PriceSet): Rates {
  const input = new ExactDecimal(set.input);
  const cacheWrite = set.cache_write !== undefined ? new ExactDecimal(set.cache_write) : input;
  const output = set.output !== undefined ? new ExactDecimal(set.output) : undefined;
  const rates = {
    input,
    cache_read: set.cache_read !== undefined ? new ExactDecimal(set.cache_read) : input,
    cache_write: cacheWrite,
    cache_write_1h: set.cache_write_1h !== undefined ? new ExactDecimal(set.cache_write_1h) : cacheWrite,
    output,
    reasoning: set.reasoning !== undefined ? new ExactDecimal(set.reasoning) : output,
    input_audio: set.input_audio !== undefined ? new ExactDecimal(set.input_audio) : undefined,
    output_audio: set.output_audio !== undefined ? new ExactDecimal(set.output_audio) : undefined,
    output_image: set.output_image !== undefined ? new ExactDecimal(set.output_image) : undefined,
  };
  const applied: AppliedRates = {
    input: rates.input.toFixed(),
    cache_read: rates.cache_read.toFixed(),
    cache_write: rates.cache_write.toFixed(),
    cache_write_1h: rates.cache_write_1h.toFixed(),
    output: rates.output?.toFixed() ?? '',
    reasoning: rates.reasoning?.toFixed() ?? '',
    input_audio: rates.input_audio?.toFixed() ?? '',
    output_audio: rates.output_audio?.toFixed() ?? '',
    output_image: rates.output_image?.toFixed() ?? '',
  };
  return { ...rates, applied: Object.freeze(applied), perToken: scaleRates(rates) };
}

/** `r` with every rate multiplied by `m`, exactly; memoised per rate set and multiplier. */
const scaledRatesMemo = new WeakMap<Rates, Map<string, Rates>>();
function multiplyRates(r: Rates, m: ExactDecimal): Rates {
  const key = m.toFixed();
  let byM = scaledRatesMemo.get(r);
  if (!byM) scaledRatesMemo.set(r, (byM = new Map()));
  const hit = byM.get(key);
  if (hit) return hit;
  const times = (d: ExactDecimal | undefined) => (d === undefined ? undefined : d.times(m).toFixed());
  const set: PriceSet = { input: r.input.times(m).toFixed() };
  set.cache_read = times(r.cache_read);
  set.cache_write = times(r.cache_write);
  set.cache_write_1h = times(r.cache_write_1h);
  const output = times(r.output);
  const reasoning = times(r.reasoning);
  if (output !== undefined) set.output = output;
  if (reasoning !== undefined) set.reasoning = reasoning;
  for (const k of ['input_audio', 'output_audio', 'output_image'] as const) {
    const v = times(r[k]);
    if (v !== undefined) set[k] = v;
  }
  const scaled = compileRates(set);
  byM.set(key, scaled);
  return scaled;
}

function compilePlan(prices: PriceSet, tiers: ContextTier[] | undefined): PricePlan {
  return {
    base: compileRates(prices),
    contextTiers: (tiers ?? [])
      .map((t) => ({
        aboveInputTokens: tierThreshold(t),
        rates: compileRates(t.prices_usd_per_mtok),
        label: t.from_input_tokens !== undefined ? `from ${t.from_input_tokens} input tokens` : `above ${t.above_input_tokens} input tokens`,
      }))
      .sort((a, b) => b.aboveInputTokens - a.aboveInputTokens),
  };
}

function compileEntry(e: CatalogEntry | PriceOverride, origin: 'catalog' | 'override'): CompiledEntry {
  const provider = catalogProviderFor(e.provider) ?? e.provider.trim().toLowerCase();
  const effectiveFrom = e.effective_from ?? '1970-01-01';
  const plans: Partial<Record<ServiceTier, PricePlan>> = {
    standard: compilePlan(e.prices_usd_per_mtok, e.context_tiers),
  };
  for (const tier of ['batch', 'flex', 'priority'] as const) {
    const t = e.service_tiers?.[tier];
    if (t) plans[tier] = compilePlan(t.prices_usd_per_mtok, t.context_tiers);
  }
  // Ids are matched in normalised form, so an override may be written as a span carries it (`org/model`).
  const ids = [...new Set([e.model, ...(e.aliases ?? [])].map(normalizeModelId))];
  return {
    provider,
    model: e.model,
    effectiveFrom,
    effectiveFromMillis: effectiveDateMillis(effectiveFrom),
    origin,
    source: e.source,
    sourceDate: e.source_date,
    ids,
    prefixes: [...new Set(e.match_prefixes ?? [])],
    plans,
    priceId: `${origin === 'override' ? 'override:' : ''}${provider}/${e.model}@${effectiveFrom}`,
    retiredFromMillis: e.retired_from !== undefined ? effectiveDateMillis(e.retired_from) : Number.NaN,
    raw: e,
    ...(e.peak
      ? {
          peak: {
            windows: e.peak.windows_utc.map((w): [number, number] => [hhmmMinutes(w.from), hhmmMinutes(w.to)]),
            dayMask: dayMask(e.peak.days_utc ?? WEEKDAYS),
            // Peak hours reprice the standard tier (the schema keeps peak and context tiers apart).
            plan: compilePlan(e.peak.prices_usd_per_mtok, undefined),
          },
        }
      : {}),
  };
}

function formatIssues(what: string, doc: unknown, error: z.ZodError): string {
  const lines = error.issues.slice(0, 10).map((issue) => {
    const path = issue.path;
    let where = what;
    let rest = path;
    if (path[0] === 'entries' && typeof path[1] === 'number') {
      where = `${what} entries[${path[1]}]${describeEntry((doc as { entries?: unknown[] })?.entries?.[path[1]])}`;
      rest = path.slice(2);
    } else if (typeof path[0] === 'number') {
      where = `${what}[${path[0]}]${describeEntry((doc as unknown[])?.[path[0]])}`;
      rest = path.slice(1);
    }
    const field = rest.length ? rest.join('.') : '(entry)';
    return `${where}: ${field}: ${issue.message}`;
  });
  return lines.join('\n');
}

function describeEntry(e: unknown): string {
  if (e && typeof e === 'object') {
    const { provider, model } = e as { provider?: unknown; model?: unknown };
    if (typeof model === 'string') return ` (${typeof provider === 'string' ? provider + '/' : ''}${model})`;
  }
  return '';
}

function addToTimeline(map: Map<string, Timeline>, id: string, entry: CompiledEntry, what: string): void {
  let t = map.get(id);
  if (!t) map.set(id, (t = []));
  const clash = t.find((x) => x.effectiveFromMillis === entry.effectiveFromMillis);
  if (clash && clash !== entry) {
    throw new PriceCatalogError(
      `${what}: id '${id}' is claimed by ${clash.provider}/${clash.model} and ${entry.provider}/${entry.model} ` +
        `with the same effective_from ${entry.effectiveFrom}`,
    );
  }
  if (!clash) {
    t.push(entry);
    t.sort((a, b) => a.effectiveFromMillis - b.effectiveFromMillis);
  }
}

function buildIndex(entries: CompiledEntry[], what: string): IdIndex {
  const exact = new Map<string, Timeline>();
  const prefixMap = new Map<string, Timeline>();
  for (const e of entries) {
    for (const id of e.ids) addToTimeline(exact, id, e, what);
    for (const p of e.prefixes) addToTimeline(prefixMap, p, e, what);
  }
  const prefixes = [...prefixMap.entries()]
    .map(([prefix, timeline]) => ({ prefix, timeline }))
    .sort((a, b) => b.prefix.length - a.prefix.length || (a.prefix < b.prefix ? -1 : 1));
  return { exact, prefixes };
}

function lookup(index: IdIndex, id: string): Timeline | undefined {
  const t = index.exact.get(id);
  if (t) return t;
  for (const p of index.prefixes) if (id.startsWith(p.prefix)) return p.timeline;
  return undefined;
}

/** The latest entry in force at `atMillis`. */
function inForce(timeline: Timeline, atMillis: number): CompiledEntry | undefined {
  for (let i = timeline.length - 1; i >= 0; i--) {
    if (timeline[i].effectiveFromMillis <= atMillis) return timeline[i];
  }
  return undefined;
}

let cachedDefaultCatalog: { doc: Catalog; entries: CompiledEntry[] } | undefined;

function parseCatalogDocument(doc: unknown, what: string): { doc: Catalog; entries: CompiledEntry[] } {
  const parsed = catalogSchema.safeParse(doc);
  if (!parsed.success) throw new PriceCatalogError(formatIssues(what, doc, parsed.error));
  const entries = parsed.data.entries.map((e) => compileEntry(e, 'catalog'));
  for (const e of entries) {
    if (!(CATALOG_PROVIDERS as readonly string[]).includes(e.provider)) {
      throw new PriceCatalogError(`${what}: ${e.provider}/${e.model}: provider: not a catalog provider (${CATALOG_PROVIDERS.join(', ')})`);
    }
  }
  return { doc: parsed.data, entries };
}

function readCatalogFile(path: string): { doc: Catalog; entries: CompiledEntry[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PriceCatalogError(`cannot read price catalog ${path}: ${(err as Error).message}`);
  }
  return parseCatalogText(text, path);
}

function parseCatalogText(text: string, path: string): { doc: Catalog; entries: CompiledEntry[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text, { schema: 'core', merge: false, maxAliasCount: 1000 });
  } catch (err) {
    throw new PriceCatalogError(`price catalog ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return parseCatalogDocument(doc, `price catalog ${path}`);
}

function isNonNegativeInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export class PriceBook {
  private readonly catalogIndex: IdIndex;
  /** One index per provider: custom providers may reuse ids. */
  private readonly overrideIndexes = new Map<string, IdIndex>();
  /** Overrides by `${provider}/${model}`, for catalog models repriced by configuration. */
  private readonly overridesByModel = new Map<string, Timeline>();
  private readonly memo = new Map<string, Map<string, Resolution>>();
  private memoSize = 0;
  private readonly memoLimit: number;
  /** Every catalog entry, in file order. */
  readonly entries: readonly CompiledEntry[];
  readonly overrides: readonly CompiledEntry[];
  private readonly suggestionNames: string[];

  private constructor(catalogEntries: CompiledEntry[], overrideEntries: CompiledEntry[], memoLimit: number) {
    this.entries = catalogEntries;
    this.overrides = overrideEntries;
    this.catalogIndex = buildIndex(catalogEntries, 'price catalog');
    const byProvider = new Map<string, CompiledEntry[]>();
    for (const o of overrideEntries) {
      let list = byProvider.get(o.provider);
      if (!list) byProvider.set(o.provider, (list = []));
      list.push(o);
    }
    for (const [p, list] of byProvider) this.overrideIndexes.set(p, buildIndex(list, `price overrides (${p})`));
    for (const o of overrideEntries) {
      addToTimeline(this.overridesByModel, `${o.provider}/${o.model}`, o, 'price overrides');
    }
    this.memoLimit = memoLimit;
    this.suggestionNames = [...new Set([...catalogEntries, ...overrideEntries].map((e) => e.model))];
  }

  /**
   * Loads the shipped catalog (parsed once per process and cached) or `options.catalogPath` / `options.catalog`,
   * and merges configured overrides. Throws PriceCatalogError naming the entry and field on invalid input.
   */
  static load(options: PriceBookOptions = {}): PriceBook {
    let catalog: { entries: CompiledEntry[] };
    if (options.catalog !== undefined) catalog = parseCatalogDocument(options.catalog, 'price catalog');
    else if (options.catalogPath !== undefined) catalog = readCatalogFile(options.catalogPath);
    else catalog = cachedDefaultCatalog ??= parseCatalogText(SHIPPED_CATALOG_YAML, 'data/price-catalog.yaml (shipped)');

    let overrideEntries: CompiledEntry[] = [];
    if (options.overrides !== undefined) {
      const parsed = priceOverridesSchema.safeParse(options.overrides);
      if (!parsed.success) throw new PriceCatalogError(formatIssues('price overrides', options.overrides, parsed.error));
      overrideEntries = parsed.data.map((o) => compileEntry(o, 'override'));
    }
    const limit = options.lookupCacheSize ?? 4096;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('lookupCacheSize must be a positive integer');
    return new PriceBook(catalog.entries, overrideEntries, limit);
  }

  private resolve(provider: string | undefined, rawModel: string): Resolution {
    // provider → raw model → resolution: no joined key string to build and hash per call.
    const byModel = this.memo.get(provider ?? '');
    const hit = byModel?.get(rawModel);
    if (hit) return hit;
    const normalized = normalizeModelId(rawModel);
    const resolution: Resolution = {
      normalized,
      overrideTimeline: this.overrides.length ? this.lookupOverride(provider, normalized) : undefined,
      catalogTimeline: lookup(this.catalogIndex, normalized),
    };
    if (this.memoSize >= this.memoLimit) {
      // Bounded: drop the oldest insertion of the oldest provider (Maps iterate in insertion order).
      for (const [p, models] of this.memo) {
        const oldest = models.keys().next();
        if (!oldest.done) {
          models.delete(oldest.value);
          this.memoSize--;
        }
        if (models.size === 0) this.memo.delete(p);
        break;
      }
    }
    let models = this.memo.get(provider ?? '');
    if (models === undefined) this.memo.set(provider ?? '', (models = new Map()));
    models.set(rawModel, resolution);
    this.memoSize++;
    return resolution;
  }

  private lookupOverride(provider: string | undefined, normalized: string): Timeline | undefined {
    // Overrides of catalog providers' models behave like catalog entries (found from any span provider);
    // overrides for a custom provider (e.g. a self-hosted `vllm`) apply only to spans naming that provider,
    // or naming none.
    if (provider !== undefined) {
      const own = this.overrideIndexes.get(providerLabel(provider));
      const t = own && lookup(own, normalized);
      if (t) return t;
      for (const p of CATALOG_PROVIDERS) {
        const idx = this.overrideIndexes.get(p);
        const found = idx && lookup(idx, normalized);
        if (found) return found;
      }
      return undefined;
    }
    for (const idx of this.overrideIndexes.values()) {
      const found = lookup(idx, normalized);
      if (found) return found;
    }
    return undefined;
  }

  /**
   * Normalises a span's provider/model for metric labels: the catalog name when known (any date), else the
   * normalised raw id.
   */
  normalizeModel(provider: string | undefined, rawModel: string): { provider: string; model: string; known: boolean } {
    const r = this.resolve(provider, rawModel);
    const t = r.overrideTimeline ?? r.catalogTimeline;
    if (t && t.length) {
      const newest = t[t.length - 1];
      return { provider: newest.provider, model: newest.model, known: true };
    }
    return { provider: providerLabel(provider), model: r.normalized, known: false };
  }

  /** Prices one call. Never throws on bad input: an unknown model or unusable usage gives an unpriced result. */
  price(query: PriceQuery): PriceResult {
    const r = this.priceStrings(query);
    if (!r.priced) return r;
    const costUsd = {} as PricedResult['costUsd'];
    for (const t of TOKEN_TYPES) costUsd[t] = new Decimal(r.costUsd[t]);
    // The strings are exact; constructing the shared Decimal from them never rounds.
    const { feeCostUsd, ...rest } = r;
    const out: PricedResult = { ...rest, costUsd, totalUsd: new Decimal(r.totalUsd), ratesUsdPerMtok: { ...r.ratesUsdPerMtok } };
    if (feeCostUsd !== undefined) out.feeCostUsd = new Decimal(feeCostUsd);
    return out;
  }

  /**
   * `price` with the money as exact decimal strings (what the ledger stores), without decimal.js: the exporter
   * prices every span through it. The same result as `price`, whose Decimals are built from these strings.
   */
  priceStrings(query: PriceQuery): PriceStringsResult {
    const r = this.resolve(query.provider, query.model);
    const tier: ServiceTier = query.serviceTier ?? 'standard';
    const atMillis = query.at instanceof Date ? query.at.getTime() : NaN;

    const unpriced = (provider: string, model: string, reason: string, suggestions: string[] = []): UnpricedResult => ({
      priced: false,
      provider,
      model,
      reason,
      suggestions,
    });

    if (Number.isNaN(atMillis)) return unpriced(providerLabel(query.provider), r.normalized, 'invalid call time');
    const u = query.usage;
    for (const t of TOKEN_TYPES) {
      if (!isNonNegativeInt(u?.[t])) {
        return unpriced(providerLabel(query.provider), r.normalized, `invalid usage: ${t} must be a non-negative integer`);
      }
    }
    const cw1h = u.cache_write_1h ?? 0;
    if (!isNonNegativeInt(cw1h) || cw1h > u.cache_write) {
      return unpriced(providerLabel(query.provider), r.normalized, 'invalid usage: cache_write_1h must be an integer between 0 and cache_write');
    }
    const parts: Parts = { cacheWrite1h: cw1h, inputAudio: u.input_audio ?? 0, outputAudio: u.output_audio ?? 0, outputImage: u.output_image ?? 0 };
    if (
      !isNonNegativeInt(parts.inputAudio) ||
      !isNonNegativeInt(parts.outputAudio) ||
      !isNonNegativeInt(parts.outputImage) ||
      parts.inputAudio > u.input ||
      parts.outputAudio + parts.outputImage > u.output
    ) {
      return unpriced(
        providerLabel(query.provider),
        r.normalized,
        'invalid usage: input_audio must be an integer part of input, output_audio and output_image integer parts of output',
      );
    }

    const calls = query.toolCalls;
    if (calls !== undefined) {
      for (const k of FEE_KINDS) {
        const n = calls[k];
        if (n !== undefined && !isNonNegativeInt(n)) {
          return unpriced(providerLabel(query.provider), r.normalized, `invalid usage: tool_calls.${k} must be a non-negative integer`);
        }
      }
    }

    let entry: CompiledEntry | undefined;
    if (r.overrideTimeline) entry = inForce(r.overrideTimeline, atMillis);
    if (!entry && r.catalogTimeline) {
      entry = inForce(r.catalogTimeline, atMillis);
      if (entry && this.overridesByModel.size > 0) {
        const o = this.overridesByModel.get(`${entry.provider}/${entry.model}`);
        const oe = o && inForce(o, atMillis);
        if (oe) entry = oe;
      }
    }
    if (!entry) {
      const timeline = r.overrideTimeline ?? r.catalogTimeline;
      if (timeline && timeline.length) {
        const first = timeline[0];
        return unpriced(
          first.provider,
          first.model,
          `no price for model ${first.model} in force at ${new Date(atMillis).toISOString()} (earliest effective_from ${first.effectiveFrom})`,
        );
      }
      return unpriced(providerLabel(query.provider), r.normalized, `no price for model ${r.normalized}`, this.suggest(r.normalized));
    }

    if (entry.retiredFromMillis <= atMillis) {
      return unpriced(
        entry.provider,
        entry.model,
        `model ${entry.model} was retired by its provider on ${entry.raw.retired_from}: calls after that are errors, not billable`,
      );
    }
    let plan = entry.plans[tier];
    let pricePeriod: 'peak' | 'off_peak' | undefined;
    if (entry.peak && tier === 'standard') {
      pricePeriod = inPeak(entry.peak, atMillis) ? 'peak' : 'off_peak';
      if (pricePeriod === 'peak') plan = entry.peak.plan;
    }
    if (!plan) {
      return unpriced(entry.provider, entry.model, `no ${tier} price for model ${entry.model} (price ${entry.effectiveFrom})`);
    }
    const promptTokens = u.input + u.cache_read + u.cache_write;
    let rates = plan.base;
    let contextTier: string | undefined;
    for (const t of plan.contextTiers) {
      if (promptTokens > t.aboveInputTokens) {
        rates = t.rates;
        contextTier = t.label;
        break;
      }
    }
    if (tier !== 'standard' && !contextTier) {
      // A service tier without its own context tiers cannot price a request the standard plan would reprice.
      const std = entry.plans.standard!;
      const crossed = std.contextTiers.find((t) => promptTokens > t.aboveInputTokens);
      if (crossed && plan.contextTiers.length === 0) {
        return unpriced(
          entry.provider,
          entry.model,
          `no ${tier} price for model ${entry.model} above ${crossed.aboveInputTokens} input tokens`,
        );
      }
    }
    // Premiums and modality checks cost nothing on the common path (no speed, no regional processing, text only).
    let adjustments: string[] | undefined;
    let multiplier: ExactDecimal | undefined;
    const mult = entry.raw.multipliers;
    if (query.speed === 'fast') {
      if (mult?.fast === undefined || tier !== 'standard') {
        return unpriced(entry.provider, entry.model, `no fast-mode price for model ${entry.model}${tier !== 'standard' ? ` in the ${tier} tier` : ''} (price ${entry.effectiveFrom})`);
      }
      multiplier = new ExactDecimal(mult.fast);
      adjustments = [`fast mode x${mult.fast}`];
    }
    if (query.processing === 'regional' && mult?.regional !== undefined) {
      multiplier = (multiplier ?? new ExactDecimal(1)).times(mult.regional);
      (adjustments ??= []).push(`regional processing x${mult.regional}`);
    }
    if (multiplier) rates = multiplyRates(rates, multiplier);
    if (parts.inputAudio > 0 || parts.outputAudio > 0 || parts.outputImage > 0) {
      for (const [part, count, what] of [
        ['input_audio', parts.inputAudio, 'audio input'],
        ['output_audio', parts.outputAudio, 'audio output'],
        ['output_image', parts.outputImage, 'image output'],
      ] as const) {
        // Never priced as text: a modality the entry has no rate for leaves the call unpriced.
        if (count > 0 && rates[part] === undefined) {
          return unpriced(entry.provider, entry.model, `model ${entry.model} has no ${what} price, and the call reports ${count} ${what} tokens`);
        }
      }
    }
    if ((u.output > 0 && !rates.output) || (u.reasoning > 0 && !rates.reasoning)) {
      return unpriced(entry.provider, entry.model, `model ${entry.model} has no output price (input-only model) but the call reports output tokens`);
    }

    let fees: { lines: FeeLine[]; totalUsd: string } | undefined;
    if (calls !== undefined) {
      const f = feeLines(entry, calls);
      if (typeof f === 'string') return unpriced(entry.provider, entry.model, f);
      fees = f;
    }

    const { costUsd, totalUsd } = callCosts(u, parts, rates.perToken);
    const result: PricedStringsResult = {
      priced: true,
      provider: entry.provider,
      model: entry.model,
      priceId: entry.priceId,
      effectiveFrom: entry.effectiveFrom,
      serviceTier: tier,
      costUsd,
      totalUsd: fees ? new ExactDecimal(totalUsd).plus(fees.totalUsd).toFixed() : totalUsd,
      origin: entry.origin,
      ratesUsdPerMtok: rates.applied,
    };
    if (fees) {
      result.feeCostUsd = fees.totalUsd;
      result.fees = fees.lines;
    }
    if (contextTier) result.contextTier = contextTier;
    if (pricePeriod) result.pricePeriod = pricePeriod;
    if (adjustments) result.adjustments = adjustments;
    if (entry.source) result.source = entry.source;
    if (entry.sourceDate) result.sourceDate = entry.sourceDate;
    return result;
  }

  /** Up to three catalog names close to `normalized` (edit distance, with a bonus for shared prefixes). */
  suggest(normalized: string, max = 3): string[] {
    const scored = this.suggestionNames.map((name) => {
      let score = editDistance(normalized, name);
      if (name.startsWith(normalized) || normalized.startsWith(name)) score -= 2;
      return { name, score };
    });
    scored.sort((a, b) => a.score - b.score || (a.name < b.name ? -1 : 1));
    const limit = Math.max(3, Math.ceil(normalized.length * 0.6));
    return scored.filter((s) => s.score <= limit).slice(0, max).map((s) => s.name);
  }

  /** The entries of a model (catalog first, then overrides), for listings. */
  entriesFor(provider: string, model: string): CompiledEntry[] {
    return [...this.entries, ...this.overrides].filter((e) => e.provider === provider && e.model === model);
  }
}

/**
 * The per-call fees of a call (only the kinds it reported calls of), or why it cannot be priced: a kind the entry
 * has no fee for is never charged 0. Fees are outside the token rates: no tier or multiplier changes them.
 */
function feeLines(entry: CompiledEntry, calls: NonNullable<PriceQuery['toolCalls']>): { lines: FeeLine[]; totalUsd: string } | string | undefined {
  let lines: FeeLine[] | undefined;
  let total = new ExactDecimal(0);
  for (const kind of FEE_KINDS) {
    const n = calls[kind] ?? 0;
    if (n === 0) continue;
    const fee = entry.raw.fees?.[kind];
    if (fee === undefined) {
      return `model ${entry.model} has no ${kind} fee (price ${entry.effectiveFrom}), and the call reports ${n} ${kind} call${n === 1 ? '' : 's'}`;
    }
    const per1000 = fee.usd_per_1000 !== undefined ? new ExactDecimal(fee.usd_per_1000) : new ExactDecimal(fee.usd_per_call as string).times(1000);
    const billed = fee.per_request ? 1 : n;
    const cost = per1000.times(billed).div(1000);
    total = total.plus(cost);
    (lines ??= []).push({ kind, calls: n, billed, usdPer1000: per1000.toFixed(), costUsd: cost.toFixed() });
  }
  return lines ? { lines, totalUsd: total.toFixed() } : undefined;
}

/** Levenshtein distance, O(n·m) with one row; only used to suggest names for an unknown model. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

export type { Usage };
