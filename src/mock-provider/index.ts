// A test and demo server speaking the OpenAI and Anthropic wire formats. Never used on a metering path.
export { startMockProvider, userOf } from './mock-provider.js';
export type { MockProvider, MockProviderOptions, RecordedRequest, SentStream, SentUsage } from './mock-provider.js';
export { generateWords } from './text.js';
export { generateReasoning, REASONING_WORDS_PER_RESPONSE_WORD } from './text.js';
export { anthropicMinCacheableTokens, openAICachedTokens, OPENAI_MIN_CACHED_TOKENS, OPENAI_CACHE_INCREMENT_TOKENS } from './prompt-cache.js';
