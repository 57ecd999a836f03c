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
