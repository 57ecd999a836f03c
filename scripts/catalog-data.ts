/*
 * The shipped price catalog as a TypeScript module, so the pricing engine reads it from code rather than from a
 * file next to it: a bundler (webpack in `next build`) moves code, and a path computed from `import.meta.url`
 * then points nowhere. data/price-catalog.yaml stays the one source; `npm run generate` rewrites the module and
 * `npm run check:generated` (and test/pricing/catalog-data.test.ts) fail when it is stale.
 */
export const CATALOG_DATA_MODULE = 'src/pricing/catalog-data.ts';

export function catalogDataModule(yamlText: string): string {
  return [
    '// Generated from data/price-catalog.yaml by `npm run generate` (scripts/catalog-data.ts). Do not edit.',
    '// The shipped catalog embedded as code, so it survives bundling (see PriceBook.load).',
    `export const SHIPPED_CATALOG_YAML = ${JSON.stringify(yamlText)};`,
    '',
  ].join('\n');
}
