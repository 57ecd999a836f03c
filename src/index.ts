// The public API of the `tokenmeter` package. Each stage of the data flow exports through its own index;
// this file names what applications use. The exporter is run through the `tokenmeter serve` command.
export { TOKEN_TYPES, ATTR_USER_ID, ATTR_PLAN, ATTR_FEATURE, METRIC, LABEL } from './contract/index.js';
export type { TokenType } from './contract/index.js';
export {
  zeroUsage,
  totalTokens,
  addUsage,
  normalizeOpenAIChatUsage,
  normalizeOpenAIResponsesUsage,
  normalizeAnthropicUsage,
  normalizeGeminiUsage,
  normalizeBedrockConverseUsage,
  normalizeGenAiAttributes,
  UsageError,
} from './usage/index.js';
export type { Usage, NormalizedUsage } from './usage/index.js';
export {
  tokenmeterInstrumentations,
  instrument,
  disable,
  withUser,
  trackUsage,
  TokenmeterInstrumentation,
  tokenmeterMetricProducer,
} from './instrumentation/index.js';
export type {
  TokenmeterInstrumentationOptions,
  UserAttribution,
  TrackUsageOptions,
  UsageTotals,
  TrackedCallCost,
  TrackedCall,
  TokenmeterMetricProducer,
  TokenmeterMetricProducerOptions,
} from './instrumentation/index.js';
// The pricing engine (PriceBook) is the `tokenmeter/pricing` entry point: importing `tokenmeter` to instrument
// an app never loads it (trackUsage loads it on first use).
export type { PriceBook, PriceBookOptions, PriceQuery, PriceResult, PricedResult, UnpricedResult, ServiceTier } from './pricing/index.js';
