export { zeroUsage, totalTokens, addUsage } from './usage.js';
export type { Usage, TokenType } from './usage.js';
export { MAX_PLAUSIBLE_TOKENS, UsageError } from './counts.js';
export type { NormalizedUsage } from './counts.js';
export { normalizeOpenAIChatUsage, normalizeOpenAIResponsesUsage } from './openai-usage.js';
export { normalizeAnthropicUsage } from './anthropic-usage.js';
export { normalizeGeminiUsage } from './gemini-usage.js';
export { normalizeBedrockConverseUsage } from './bedrock-usage.js';
export { normalizeAiSdkUsage } from './ai-sdk-usage.js';
export { normalizeGenAiAttributes, usageToGenAiAttributes } from './genai-attributes.js';
export {
  estimateTokens,
  estimateChatTokens,
  estimateEncodingForModel,
  estimatorReady,
  loadEstimator,
  ESTIMATE_TOKENS_PER_MESSAGE,
  ESTIMATE_TOKENS_PER_NAME,
  ESTIMATE_REPLY_PRIMING_TOKENS,
  EstimateUnavailableError,
} from './estimate.js';
export type { EstimateChatMessage } from './estimate.js';
