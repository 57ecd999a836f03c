/**
 * Cross-check of the shipped catalog against a dated machine-readable price map: @pydantic/genai-prices (MIT,
 * pinned exactly in package.json; its data ships inside the package and is read offline — the library only
 * downloads when updatePrices() is called, which this test never does).
 *
 * 1. Every catalog entry prices a standard call, at an instant inside its validity, the same as the reference.
 * 2. Every model the reference lists for a provider the catalog covers is priced by the catalog.
 * Each known exception sits in test/pricing/reference-allowlist.yaml with its reason and source; an unlisted
 * difference or gap fails, naming it, and so does an allowlist line that no longer applies (so the list stays
 * true). Updating the pinned version is how new models surface: see docs/pricing-catalog.md.
 */
import { readFileSync } from 'node:fs';
import { calcPrice, findProvider } from '@pydantic/genai-prices';
import { Decimal } from 'decimal.js';
import { describe, it, expect } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { CATALOG_PROVIDERS, PriceBook, type CompiledEntry } from '../../src/pricing/index.js';
import type { Usage } from '../../src/usage/usage.js';

const ALLOWLIST_PATH = new URL('./reference-allowlist.yaml', import.meta.url);

const reasonSchema = z.string().min(20, 'say why, in a sentence');
const allowlistSchema = z.strictObject({
  reference: z.strictObject({ package: z.literal('@pydantic/genai-prices'), version: z.string() }),
  /** Catalog provider → the reference's provider id. */
  providers: z.record(z.string(), z.string()),
  /** Catalog entries (priceId) whose standard call the reference prices differently, or cannot price. */
  differences: z.array(
    z.strictObject({ entry: z.string(), reason: reasonSchema, source: z.string().min(5) }),
  ),
  /** Reference models (by provider) the catalog does not price, grouped by reason. */
  not_in_catalog: z.array(
    z.strictObject({ provider: z.string(), models: z.array(z.string()).min(1), reason: reasonSchema }),
  ),
});

const allowlist = allowlistSchema.parse(parse(readFileSync(ALLOWLIST_PATH, 'utf8')));

/** A standard call: uncached input, cache reads and writes, output; a prompt well under every context tier. */
const STANDARD_CALL: Usage = { input: 10_000, cache_read: 5_000, cache_write: 2_000, output: 3_000, reasoning: 0 };

/** An instant inside the entry's validity: 12 hours after it starts, or halfway to the next dated entry. */
function instantInside(entry: CompiledEntry, book: PriceBook): Date {
  const later = book.entries
    .filter((e) => e.provider === entry.provider && e.model === entry.model && e.effectiveFromMillis > entry.effectiveFromMillis)
    .map((e) => e.effectiveFromMillis);
  const next = later.length ? Math.min(...later) : Number.POSITIVE_INFINITY;
  const retired = Number.isNaN(entry.retiredFromMillis) ? Number.POSITIVE_INFINITY : entry.retiredFromMillis;
  const end = Math.min(next, retired);
  const twelveHours = 12 * 3600_000;
  return new Date(entry.effectiveFromMillis + Math.min(twelveHours, (end - entry.effectiveFromMillis) / 2));
}

/** The standard call an entry can price: input-only models (embeddings) get no output tokens. */
function standardCallFor(entry: CompiledEntry): Usage {
  return entry.raw.prices_usd_per_mtok.output === undefined ? { ...STANDARD_CALL, output: 0 } : STANDARD_CALL;
}

/**
 * The entry's modality call, when it has modality rates: part of the uncached input is audio, part of the output
 * audio or image (the parts the entry prices), so those rates are cross-checked too.
 */
function modalityCallFor(entry: CompiledEntry): Usage | undefined {
  const p = entry.raw.prices_usd_per_mtok;
  if (p.input_audio === undefined && p.output_audio === undefined && p.output_image === undefined) return undefined;
  const u: Usage = { ...STANDARD_CALL, cache_write: 0 };
  if (p.input_audio !== undefined) u.input_audio = 4_000;
  if (p.output_audio !== undefined) u.output_audio = 1_000;
  if (p.output_image !== undefined) u.output_image = 1_290;
  return u;
}

/** The reference's price of the call, or undefined when it does not know the model. */
function referenceTotal(provider: string, model: string, at: Date, u: Usage): number | undefined {
  const r = calcPrice(
    {
      // genai-prices counts input_tokens as the whole prompt, cached parts included, and the modality parts
      // inside their totals, as tokenmeter does.
      input_tokens: u.input + u.cache_read + u.cache_write,
      cache_read_tokens: u.cache_read,
      cache_write_tokens: u.cache_write,
      output_tokens: u.output + u.reasoning,
      // tokenmeter's input_audio is uncached audio: none of the cache reads were audio.
      ...(u.input_audio ? { input_audio_tokens: u.input_audio, cache_audio_read_tokens: 0 } : {}),
      ...(u.output_audio ? { output_audio_tokens: u.output_audio } : {}),
      ...(u.output_image ? { output_image_tokens: u.output_image } : {}),
    },
    model,
    { providerId: provider, timestamp: at },
  );
  return r ? r.total_price : undefined;
}

/** Floats in the reference: equal when within a billionth of a cent, relative to the amount. */
function sameMoney(exact: Decimal, float: number): boolean {
  return exact.minus(float).abs().lte(exact.abs().times('1e-12').plus('1e-12'));
}

describe('catalog vs @pydantic/genai-prices (offline reference)', () => {
  const book = PriceBook.load();
  const pinned = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { devDependencies: Record<string, string> })
    .devDependencies['@pydantic/genai-prices'];

  it('the allowlist names the pinned reference version and every catalog provider', () => {
    expect(allowlist.reference.version).toBe(pinned);
    expect(Object.keys(allowlist.providers).sort()).toEqual([...CATALOG_PROVIDERS].sort());
    for (const ref of Object.values(allowlist.providers)) expect(findProvider({ providerId: ref }), ref).toBeDefined();
  });

  it('every catalog entry prices a standard call as the reference does, or is allowlisted with a reason', () => {
    const listed = new Map(allowlist.differences.map((d) => [d.entry, d]));
    const unlisted: string[] = [];
    const stale: string[] = [];
    for (const entry of book.entries) {
      const at = instantInside(entry, book);
      const calls = [standardCallFor(entry), modalityCallFor(entry)].filter((c): c is Usage => c !== undefined);
      let agrees = true;
      const lines: string[] = [];
      for (const usage of calls) {
        const ours = book.price({ provider: entry.provider, model: entry.model, usage, at });
        expect(ours.priced, `${entry.priceId} at ${at.toISOString()}`).toBe(true);
        if (!ours.priced) continue;
        expect(ours.priceId, entry.priceId).toBe(entry.priceId);
        // The reference may know a model only by a platform id the entry lists as an alias (Bedrock's amazon.nova-pro-v1:0).
        let theirs: number | undefined;
        for (const id of [entry.model, ...(entry.raw.aliases ?? [])]) {
          theirs = referenceTotal(allowlist.providers[entry.provider], id, at, usage);
          if (theirs !== undefined) break;
        }
        agrees &&= theirs !== undefined && sameMoney(ours.totalUsd, theirs);
        const kind = usage.input_audio || usage.output_audio || usage.output_image ? 'modality call' : 'standard call';
        lines.push(`${kind}: catalog ${ours.totalUsd.toFixed()}, reference ${theirs ?? 'no price'}`);
      }
      const line = `${entry.priceId} at ${at.toISOString()}: ${lines.join('; ')}`;
      if (!agrees && !listed.has(entry.priceId)) unlisted.push(line);
      if (agrees && listed.has(entry.priceId)) stale.push(`${line} (agrees now: remove it from the allowlist)`);
    }
    const known = new Set(book.entries.map((e) => e.priceId));
    for (const d of allowlist.differences) if (!known.has(d.entry)) stale.push(`${d.entry}: not a catalog entry`);
    expect(unlisted, 'differences from the reference that the allowlist does not explain').toEqual([]);
    expect(stale, 'allowlist lines that no longer apply').toEqual([]);
  });

  it('every reference model of a covered provider is priced by the catalog, or allowlisted with a reason', () => {
    const listed = new Map<string, string>();
    for (const group of allowlist.not_in_catalog) for (const m of group.models) listed.set(`${group.provider}/${m}`, group.reason);
    const missing: string[] = [];
    const stale: string[] = [];
    for (const [ours, refId] of Object.entries(allowlist.providers)) {
      // A reference model is covered when the catalog resolves its id, or when one of the catalog's own ids
      // (names and aliases of this provider, and of the models hosted platforms serve) is that model for the reference.
      const covered = new Set<string>();
      for (const e of book.entries) {
        for (const id of [e.model, ...(e.raw.aliases ?? [])]) {
          const r = calcPrice({ input_tokens: 1 }, id, { providerId: refId, timestamp: new Date(e.effectiveFromMillis) });
          if (r) covered.add(r.model.id);
        }
      }
      const ref = findProvider({ providerId: refId });
      for (const m of ref?.models ?? []) {
        const key = `${ours}/${m.id}`;
        const known = covered.has(m.id) || book.normalizeModel(ours, m.id).known;
        if (!known && !listed.has(key)) missing.push(`${key}${m.name ? ` (${m.name})` : ''}`);
        if (known && listed.has(key)) stale.push(`${key} is priced by the catalog now: remove it from not_in_catalog`);
        listed.delete(key);
      }
    }
    for (const key of listed.keys()) stale.push(`${key}: the reference no longer lists it`);
    expect(missing, 'models the reference prices and the catalog lacks (add them, or allowlist with a reason)').toEqual([]);
    expect(stale, 'allowlist lines that no longer apply').toEqual([]);
  });
});
