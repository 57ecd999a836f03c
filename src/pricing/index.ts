export { PriceBook, PriceCatalogError, DEFAULT_CATALOG_PATH } from './price-book.js';
export type { PriceBookOptions, CompiledEntry } from './price-book.js';
export {
  catalogSchema,
  catalogEntrySchema,
  priceSetSchema,
  priceOverrideSchema,
  priceOverridesSchema,
  decimalStringSchema,
} from './catalog-schema.js';
export type { Catalog, CatalogEntry, PriceOverride, PriceSet, ContextTier, Fee } from './catalog-schema.js';
export { normalizeModelId, catalogProviderFor, providerLabel, CATALOG_PROVIDERS } from './normalize.js';
export {
  volumeDiscountUsd,
  allocateDiscount,
  volumeDiscountsSchema,
  volumeDiscountTierSchema,
  ALLOCATION_DECIMAL_PLACES,
} from './discounts.js';
export type { VolumeDiscountTier, VolumeDiscounts } from './discounts.js';
export {
  currencyRatesSchema,
  convertFromUsd,
  formatMoney,
  minorUnitDigits,
  parseCurrencyRates,
  CurrencyError,
} from './currency.js';
export type { CurrencyRates } from './currency.js';
export { parseServiceTier, SERVICE_TIERS } from './service-tier.js';
export { processingScope } from './processing.js';
export type { ProcessingFacts } from './processing.js';
export { ExactDecimal } from './decimal.js';
export type {
  PriceQuery,
  PriceResult,
  PricedResult,
  PriceStringsResult,
  PricedStringsResult,
  UnpricedResult,
  ServiceTier,
  AppliedRates,
  ToolCalls,
  FeeLine,
} from './types.js';
