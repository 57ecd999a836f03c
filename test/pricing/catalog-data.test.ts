/**
 * The shipped catalog reaches PriceBook.load() as code (src/pricing/catalog-data.ts, generated from
 * data/price-catalog.yaml), so a bundler that moves tokenmeter's code cannot separate it from its data.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { catalogDataModule } from '../../scripts/catalog-data.js';
import { SHIPPED_CATALOG_YAML } from '../../src/pricing/catalog-data.js';
import { DEFAULT_CATALOG_PATH, PriceBook } from '../../src/pricing/index.js';

describe('the embedded price catalog', () => {
  it('is data/price-catalog.yaml, byte for byte (else: npm run generate)', () => {
    const source = readFileSync(DEFAULT_CATALOG_PATH, 'utf8');
    expect(SHIPPED_CATALOG_YAML).toBe(source);
    expect(readFileSync(new URL('../../src/pricing/catalog-data.ts', import.meta.url), 'utf8')).toBe(catalogDataModule(source));
  });

  it('is what PriceBook.load() prices with, the same as loading the file', () => {
    const embedded = PriceBook.load();
    const fromFile = PriceBook.load({ catalogPath: DEFAULT_CATALOG_PATH });
    expect(embedded.entries.length).toBeGreaterThan(10);
    expect(embedded.entries.map((e) => `${e.provider}/${e.model}@${e.effectiveFrom}`)).toEqual(fromFile.entries.map((e) => `${e.provider}/${e.model}@${e.effectiveFrom}`));
  });
});
