/**
 * Prices without a restart: the exporter prices every call through a `ReloadablePricing`, whose price book is
 * replaced only by one that loaded and validated completely. A bad catalog or override is refused with its error
 * and the prices in use stay.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TokenmeterConfig } from '../config/index.js';
import { PriceBook, PriceCatalogError } from '../pricing/index.js';
import type { PriceQuery, PriceStringsResult } from '../pricing/types.js';
import type { PricingPort } from './ports.js';

/** Largest catalog file read (the shipped catalog is about 70 KB; anything this big is a mistake or an attack). */
export const MAX_CATALOG_FILE_BYTES = 16 * 1024 * 1024;

/** A validated price book and a fingerprint of what it was built from (an unchanged source is not swapped). */
export interface LoadedPricing {
  pricing: PricingPort;
  fingerprint: string;
  /** What the price book was built from, to build the same one in a worker thread (absent: not rebuildable there). */
  source?: PricingSource;
}

/** The inputs of `PriceBook.load`, plain data (structured-cloneable). */
export interface PricingSource {
  catalogText?: string;
  catalogName?: string;
  overrides?: NonNullable<TokenmeterConfig['pricing']['overrides']>;
}

/** The price book of a `PricingSource` (in a worker thread: the same book the main thread built). */
export function priceBookOf(source: PricingSource): PricingPort {
  return PriceBook.load(source);
}

function readCatalogCapped(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PriceCatalogError(`pricing.catalog_file ${path}: cannot read it (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new PriceCatalogError(`pricing.catalog_file ${path}: is a directory, expected a YAML file`);
    const buf = Buffer.alloc(64 * 1024);
    let chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_CATALOG_FILE_BYTES) throw new PriceCatalogError(`pricing.catalog_file ${path}: larger than ${MAX_CATALOG_FILE_BYTES} bytes`);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    const text = Buffer.concat(chunks, total).toString('utf8');
    chunks = [];
    if (text.includes('\u0000')) throw new PriceCatalogError(`pricing.catalog_file ${path}: contains NUL bytes, expected a YAML text file`);
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * Builds the price book of a configuration's `pricing` section: the shipped catalog or `catalog_file`, plus
 * `overrides`. Throws PriceCatalogError naming the file, the entry and the field when anything is invalid.
 */
export function loadPricing(pricing: TokenmeterConfig['pricing'], cwd = process.cwd()): LoadedPricing {
  const hash = createHash('sha256');
  let catalog: { catalogText: string; catalogName: string } | undefined;
  if (pricing.catalog_file !== undefined) {
    const path = resolve(cwd, pricing.catalog_file);
    const text = readCatalogCapped(path);
    hash.update(`catalog ${path}\n${text}\n`);
    catalog = { catalogText: text, catalogName: `${path} (pricing.catalog_file)` };
  } else hash.update('catalog (shipped)\n');
  hash.update(JSON.stringify(pricing.overrides ?? null));
  const source: PricingSource = { ...(catalog ?? {}), ...(pricing.overrides ? { overrides: pricing.overrides } : {}) };
  const book = PriceBook.load(source);
  return { pricing: book, fingerprint: hash.digest('hex'), source };
}

/** The pricing the pipeline uses: delegates to the current price book, which `swap` replaces atomically. */
export class ReloadablePricing implements PricingPort {
  #current: PricingPort;

  constructor(initial: PricingPort) {
    this.#current = initial;
  }

  priceStrings(query: PriceQuery): PriceStringsResult {
    return this.#current.priceStrings(query);
  }

  swap(next: PricingPort): void {
    this.#current = next;
  }
}

export type PriceReloadOutcome = 'success' | 'unchanged' | 'failure';

export interface PriceReloadResult {
  outcome: PriceReloadOutcome;
  /** Why the new prices were refused (outcome failure). */
  error?: string;
}

export interface PriceReloaderOptions {
  pricing: ReloadablePricing;
  /** Re-reads the sources and builds a validated price book; throws when they are invalid. */
  load: () => LoadedPricing;
  /** The fingerprint of the prices in use at start. */
  fingerprint?: string;
  count: (outcome: PriceReloadOutcome) => void;
  log: (line: string) => void;
  /** Called right after new prices were swapped in (the exporter sends them to its ingest worker threads). */
  onSwap?: (loaded: LoadedPricing) => void;
}

/** One reload at a time; every attempt counted by outcome; errors logged (an unchanged repeated error once). */
export class PriceReloader {
  #fingerprint: string | undefined;
  #lastError: string | undefined;

  constructor(private readonly o: PriceReloaderOptions) {
    this.#fingerprint = o.fingerprint;
  }

  /** `trigger` names the cause in the log ("SIGHUP", "interval"); an interval reload logs only changes. */
  reload(trigger: string): PriceReloadResult {
    let loaded: LoadedPricing;
    try {
      loaded = this.o.load();
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.o.count('failure');
      if (trigger !== 'interval' || error !== this.#lastError) {
        this.o.log(`${trigger}: the new prices were refused, the prices in use stay: ${error}`);
      }
      this.#lastError = error;
      return { outcome: 'failure', error };
    }
    this.#lastError = undefined;
    if (loaded.fingerprint === this.#fingerprint) {
      this.o.count('unchanged');
      if (trigger !== 'interval') this.o.log(`${trigger}: prices unchanged`);
      return { outcome: 'unchanged' };
    }
    this.o.pricing.swap(loaded.pricing);
    this.o.onSwap?.(loaded);
    this.#fingerprint = loaded.fingerprint;
    this.o.count('success');
    this.o.log(`${trigger}: prices reloaded; calls from now on are priced with them (calls already recorded keep their price)`);
    return { outcome: 'success' };
  }
}
