// tokenmeter's instrumentation of LLM SDKs: spans and GenAI metrics with the provider's token counts.
export { tokenmeterInstrumentations, instrument, disable, TokenmeterInstrumentation } from './instrumentation.js';
export { withUser } from './scope.js';
export { tokenmeterMetricProducer } from './genai-metrics.js';
export type { TokenmeterMetricProducer, TokenmeterMetricProducerOptions } from './genai-metrics.js';
export type { UserAttribution } from './scope.js';
export type { TokenmeterInstrumentationOptions } from './options.js';
export { trackUsage } from './track-usage.js';
export type { TrackUsageOptions, UsageTotals, TrackedCallCost } from './track-usage.js';
export type { TrackedCall } from './scope.js';
export { UsageLimitError } from './usage-limit-error.js';
export type { UsageLimitName, UsageLimitDetails } from './usage-limit-error.js';
export { configureEnforcement } from './enforce.js';
export type { EnforcementOptions, EnforceMode, FailMode } from './enforce.js';
export { checkUsage, remaining } from './check-usage.js';
export type { RemainingUsage } from './check-usage.js';
