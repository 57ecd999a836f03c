// Types of `tokenmeter` for CommonJS consumers (TypeScript `module: node16` / `nodenext` in a CommonJS file,
// where importing the ESM declarations is error TS1479). At run time `require('tokenmeter')` loads the ES module
// (Node.js >= 20.19 requires ES modules). Every name mirrors src/index.ts; test/e2e/typescript-consumers.test.ts
// checks that none is missing and type-checks tiny projects with each supported setting.
import type * as M from './index.js' with { 'resolution-mode': 'import' };

export declare const TOKEN_TYPES: typeof M.TOKEN_TYPES;
export declare const ATTR_USER_ID: typeof M.ATTR_USER_ID;
export declare const ATTR_PLAN: typeof M.ATTR_PLAN;
export declare const ATTR_FEATURE: typeof M.ATTR_FEATURE;
export declare const METRIC: typeof M.METRIC;
export declare const LABEL: typeof M.LABEL;
export type TokenType = M.TokenType;

export declare const zeroUsage: typeof M.zeroUsage;
export declare const totalTokens: typeof M.totalTokens;
export declare const addUsage: typeof M.addUsage;
export declare const normalizeOpenAIChatUsage: typeof M.normalizeOpenAIChatUsage;
export declare const normalizeOpenAIResponsesUsage: typeof M.normalizeOpenAIResponsesUsage;
export declare const normalizeAnthropicUsage: typeof M.normalizeAnthropicUsage;
export declare const normalizeGeminiUsage: typeof M.normalizeGeminiUsage;
export declare const normalizeBedrockConverseUsage: typeof M.normalizeBedrockConverseUsage;
export declare const normalizeGenAiAttributes: typeof M.normalizeGenAiAttributes;
export declare const UsageError: typeof M.UsageError;
export type UsageError = M.UsageError;
export type Usage = M.Usage;
export type NormalizedUsage = M.NormalizedUsage;

export declare const tokenmeterInstrumentations: typeof M.tokenmeterInstrumentations;
export declare const instrument: typeof M.instrument;
export declare const disable: typeof M.disable;
export declare const withUser: typeof M.withUser;
export declare const trackUsage: typeof M.trackUsage;
export declare const TokenmeterInstrumentation: typeof M.TokenmeterInstrumentation;
export type TokenmeterInstrumentation = M.TokenmeterInstrumentation;
export type TokenmeterInstrumentationOptions = M.TokenmeterInstrumentationOptions;
export type UserAttribution = M.UserAttribution;
export type TrackUsageOptions = M.TrackUsageOptions;
export type UsageTotals<T> = M.UsageTotals<T>;
export type TrackedCallCost = M.TrackedCallCost;
export type TrackedCall = M.TrackedCall;
export declare const UsageLimitError: typeof M.UsageLimitError;
export type UsageLimitError = M.UsageLimitError;
export declare const configureEnforcement: typeof M.configureEnforcement;
export declare const checkUsage: typeof M.checkUsage;
export declare const remaining: typeof M.remaining;
export type UsageLimitName = M.UsageLimitName;
export type UsageLimitDetails = M.UsageLimitDetails;
export type EnforcementOptions = M.EnforcementOptions;
export type EnforceMode = M.EnforceMode;
export type FailMode = M.FailMode;
export type RemainingUsage = M.RemainingUsage;
export declare const tokenmeterMetricProducer: typeof M.tokenmeterMetricProducer;
export type TokenmeterMetricProducer = M.TokenmeterMetricProducer;
export type TokenmeterMetricProducerOptions = M.TokenmeterMetricProducerOptions;

export type PriceBook = M.PriceBook;
export type PriceBookOptions = M.PriceBookOptions;
export type PriceQuery = M.PriceQuery;
export type PriceResult = M.PriceResult;
export type PricedResult = M.PricedResult;
export type UnpricedResult = M.UnpricedResult;
export type ServiceTier = M.ServiceTier;
